"""The photo sets the harness measures on, from `../shared/data/`, each read as annotated images.

- `faces`: 400 WIDER val photos with official boxes (`faces/`, subset wider-val): recall and precision.
- `wider-tune`: 800 more WIDER val photos; the verifier is fitted on its even-numbered half, so report on
  `--split odd`.
- `nofaces`: 14 photos with no person at all: every mask is a false mask.
- `large`: 19 large ordinary photos without annotations: masks per photo, for a person to check against a
  drawn preview (`faceguard anonymize --preview`).
- `walls`: walls of small faces made from `large/`'s portraits, one per face height
  (`consumer/evaluation/walls.py`): a crowd with no larger face to point the guided passes at it.
- `facefree`: 84 more photos with no person, desktop wallpapers from Debian's packages (moss and soil, leaves,
  wood, water, dogs, paper, artwork), fetched into `.cache/facefree/` by `ops/fetch_facefree.py`, not in
  `../shared/data/`: every mask is a false mask, as on `nofaces`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from consumer.detection.model_files import DEFAULT_MODELS_DIR
from consumer.evaluation.recall import AnnotatedImage, Half, half_of, image_size, load_annotations
from consumer.evaluation.walls import build_walls
from consumer.imaging.types import IMAGE_SUFFIXES

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FACEFREE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "facefree"


class Suite(StrEnum):
    FACES = "faces"
    TUNE = "wider-tune"
    NOFACES = "nofaces"
    LARGE = "large"
    WALLS = "walls"
    FACEFREE = "facefree"

    @property
    def annotated(self) -> bool:
        return self in (Suite.FACES, Suite.TUNE, Suite.WALLS)


def suite_images(
    suite: Suite,
    *,
    data: Path = DEFAULT_DATA,
    split: Half = Half.ALL,
    limit: int = 0,
    work: Path | None = None,
    models_dir: Path = DEFAULT_MODELS_DIR,
) -> list[AnnotatedImage]:
    """The suite's photos (the first `limit` when given, then the `split` half), in a stable order. The
    walls are made into `work` (required for them), their portraits' faces found with the models in
    `models_dir`. Raises FileNotFoundError when the data folder lacks the suite."""
    if suite is not Suite.FACEFREE and not data.is_dir():
        raise FileNotFoundError(f"no shared data at {data}: it is not beside the repository")
    if suite is Suite.WALLS:
        if work is None:
            raise ValueError("the walls are made into a folder: pass `work`")
        images = build_walls(data / "large", work, models_dir)
    elif suite is Suite.FACES:
        images = load_annotations(data / "faces" / "annotations.jsonl", "wider-val")
    elif suite is Suite.FACEFREE:
        if not FACEFREE_DIR.is_dir():
            raise FileNotFoundError(f"no photos at {FACEFREE_DIR}: fetch them with ops/fetch_facefree.py")
        images = unannotated(FACEFREE_DIR)
    elif suite is Suite.TUNE:
        images = load_annotations(data / "wider-tune" / "annotations.jsonl")
    else:
        images = unannotated(data / suite.value)
    images = images[:limit] if limit else images
    return half_of(images, split)


def unannotated(folder: Path) -> list[AnnotatedImage]:
    """The photos of `folder`, sorted by name, with no face annotated (their sizes read from the headers)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no photos at {folder}")
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(AnnotatedImage(path, *image_size(path), (), folder.name))
    return images
