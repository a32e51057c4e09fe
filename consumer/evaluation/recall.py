"""Scoring a detector against annotated faces: how much of each face the masks cover.

The measure is the product's: a face counts as masked when the mask regions
(detections grown by the mask margin, clipped to the image) cover at least
`MASKED_COVERAGE` of its annotated box. Faces the annotators marked invalid are
skipped. A detection "matches no face" when its IoU with every annotated face
(invalid ones included) is below `NO_MATCH_IOU`. Results are broken down by
annotated face height.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from consumer.detection.scan import ScanDetector
from consumer.detection.strategy import Strategy
from consumer.errors import InvalidInput
from consumer.imaging.decode import decode_image, inspect_image
from consumer.imaging.types import Box, Pixels

# The shared annotated photos, beside the repository (../shared/data/faces).
DEFAULT_ANNOTATIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces" / "annotations.jsonl"
MASKED_COVERAGE = 0.6
NO_MATCH_IOU = 0.2
# Face height buckets in pixels: (label, lower bound inclusive, upper bound exclusive).
HEIGHT_BUCKETS = (("<16", 0, 16), ("16-32", 16, 32), ("32-64", 32, 64), ("64-128", 64, 128), (">128", 128, 10**9))


@dataclass(frozen=True)
class AnnotatedFace:
    box: Box
    invalid: bool = False
    hard: bool = False


@dataclass(frozen=True)
class AnnotatedImage:
    path: Path
    width: int
    height: int
    faces: tuple[AnnotatedFace, ...]
    subset: str


class AnnotationsError(ValueError):
    """A line of an annotations file that is not an annotation, or names an image that is not there."""


def load_annotations(path: Path, subset: str | None = None) -> list[AnnotatedImage]:
    """Images of an annotations file, in file order: one JSON object per line, `{"image": "a.jpg", "faces":
    [[x, y, w, h], ...]}`, optionally with the image's `width` and `height` (read from its header when
    absent), a `subset`, and WIDER's `difficulty` lists (`../shared/data/faces/annotations.jsonl`). Each image
    lies in the file's `images/` folder when it has one, otherwise beside the file. Raises AnnotationsError
    naming the line for one that is not such an object, or whose image is not there."""
    folder = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    images = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            image = _annotated(json.loads(line), folder)
        except json.JSONDecodeError as exc:
            raise AnnotationsError(f"{path} line {number}: not JSON ({exc.msg})") from exc
        except KeyError as exc:
            raise AnnotationsError(f"{path} line {number}: no {exc} field") from exc
        except (ValueError, TypeError, OSError, InvalidInput) as exc:
            raise AnnotationsError(f"{path} line {number}: {exc}") from exc
        if subset is None or image.subset == subset:
            images.append(image)
    return images


def _annotated(entry: dict[str, Any], folder: Path) -> AnnotatedImage:
    """One line's image. Raises ValueError, KeyError, TypeError or OSError for a line that is not one."""
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    image_path = folder / str(entry["image"])
    if not image_path.is_file():
        raise ValueError(f"no image at {image_path}")
    difficulty = entry.get("difficulty") or {}
    count = len(entry["faces"])
    invalid = difficulty.get("invalid") or [0] * count
    hard = difficulty.get("hard") or [0] * count
    for name, labels in (("invalid", invalid), ("hard", hard)):
        if len(labels) != count:
            raise ValueError(f"difficulty.{name} has {len(labels)} labels for {count} faces")
    faces = tuple(
        AnnotatedFace(_face_box(box), bool(bad), bool(is_hard))
        for box, bad, is_hard in zip(entry["faces"], invalid, hard, strict=True)
    )
    if "width" in entry and "height" in entry:
        width, height = int(entry["width"]), int(entry["height"])
    else:
        width, height = image_size(image_path)
    return AnnotatedImage(image_path, width, height, faces, str(entry.get("subset", "")))


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of the image file at `path`, from its header. Raises OSError or InvalidInput."""
    header = inspect_image(path.read_bytes(), max_pixels=10**9)
    return header.width, header.height


def _face_box(box: object) -> Box:
    if isinstance(box, list) and len(box) == 4 and all(type(v) in (int, float) for v in box):
        return Box(*(int(v) for v in box))
    raise ValueError(f"a face is [x, y, w, h] in pixels, not {json.dumps(box)[:40]}")


class Half(StrEnum):
    """The presets were tuned on the even-numbered images of the wider-val part; the odd-numbered ones are
    held out."""

    ALL = "all"
    EVEN = "even"
    ODD = "odd"


def half_of(images: list[AnnotatedImage], half: Half) -> list[AnnotatedImage]:
    """All `images`, or the even- or odd-numbered ones."""
    if half is Half.ALL:
        return images
    return images[0 if half is Half.EVEN else 1 :: 2]


@dataclass(frozen=True)
class ImageScore:
    """One image: per valid face whether it was masked; detections matching no face; pixel counts."""

    masked: list[tuple[AnnotatedFace, bool]]
    unmatched_detections: int
    detections: int
    nonface_pixels_masked: int
    nonface_pixels: int
    detect_ms: float


def score_image(image: AnnotatedImage, detections: Sequence[Box], margin: float, detect_ms: float) -> ImageScore:
    """Score one image's detections, masked as the product masks them (grown by `margin`, clipped)."""
    mask = np.zeros((image.height, image.width), bool)
    for box in detections:
        region = box.grown(margin).clipped(image.width, image.height)
        mask[region.y : region.y + region.h, region.x : region.x + region.w] = True
    faces_area = np.zeros_like(mask)
    masked = []
    for face in image.faces:
        box = face.box.clipped(image.width, image.height)
        faces_area[box.y : box.y + box.h, box.x : box.x + box.w] = True
        if face.invalid or box.w == 0 or box.h == 0:
            continue
        coverage = float(mask[box.y : box.y + box.h, box.x : box.x + box.w].mean())
        masked.append((face, coverage >= MASKED_COVERAGE))
    unmatched = sum(1 for d in detections if all(d.iou(f.box) < NO_MATCH_IOU for f in image.faces))
    nonface = ~faces_area
    return ImageScore(masked, unmatched, len(detections), int((mask & nonface).sum()), int(nonface.sum()), detect_ms)


@dataclass
class Report:
    """Totals over images: masked faces per height bucket and on WIDER's hard list, and the rest."""

    by_bucket: dict[str, list[int]] = field(default_factory=lambda: {label: [0, 0] for label, _, _ in HEIGHT_BUCKETS})
    hard: list[int] = field(default_factory=lambda: [0, 0])
    images: int = 0
    images_with_detections: int = 0
    per_image: list[tuple[str, int]] = field(default_factory=list)  # each photo's name and detection count
    detections: int = 0
    unmatched: int = 0
    nonface_masked: int = 0
    nonface: int = 0
    detect_ms: float = 0.0

    def add(self, score: ImageScore, name: str = "") -> None:
        self.images += 1
        self.images_with_detections += score.detections > 0
        self.per_image.append((name, score.detections))
        self.detections += score.detections
        self.unmatched += score.unmatched_detections
        self.nonface_masked += score.nonface_pixels_masked
        self.nonface += score.nonface_pixels
        self.detect_ms += score.detect_ms
        for face, was_masked in score.masked:
            label = bucket_of(face.box.h)
            self.by_bucket[label][0] += was_masked
            self.by_bucket[label][1] += 1
            if face.hard:
                self.hard[0] += was_masked
                self.hard[1] += 1

    @property
    def masked_share(self) -> float:
        done = sum(m for m, _ in self.by_bucket.values())
        total = sum(n for _, n in self.by_bucket.values())
        return done / total if total else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "images": self.images,
            "faces": sum(n for _, n in self.by_bucket.values()),
            "masked_share": round(self.masked_share, 4),
            "masked_share_by_height": {
                label: round(m / n, 4) if n else None for label, (m, n) in self.by_bucket.items()
            },
            "faces_by_height": {label: n for label, (_, n) in self.by_bucket.items()},
            "hard_list_masked_share": round(self.hard[0] / self.hard[1], 4) if self.hard[1] else None,
            "detections": self.detections,
            "images_with_detections": self.images_with_detections,
            "detections_matching_no_face": self.unmatched,
            "unmatched_share": round(self.unmatched / self.detections, 4) if self.detections else 0.0,
            "detect_ms_per_image": round(self.detect_ms / self.images, 2) if self.images else 0.0,
            "nonface_pixels_masked_share": round(self.nonface_masked / self.nonface, 5) if self.nonface else 0.0,
        }


def bucket_of(height: int) -> str:
    for label, low, high in HEIGHT_BUCKETS:
        if low <= height < high:
            return label
    return HEIGHT_BUCKETS[-1][0]


# Decoded pixels in (as `decode_image` returns them), face boxes out.
Detect = Callable[[Pixels], list[Box]]


def evaluate(images: Iterable[AnnotatedImage], detect: Detect, margin: float) -> Report:
    """Decode every image as the worker does, run `detect` on it (timing only that) and score the result.
    Raises AnnotationsError naming an image that cannot be read or decoded."""
    report = Report()
    for image in images:
        try:
            pixels = decode_image(image.path.read_bytes(), max_pixels=10**9).pixels
        except (OSError, InvalidInput) as exc:
            raise AnnotationsError(f"{image.path}: {exc}") from exc
        started = time.perf_counter()
        boxes = detect(pixels)
        elapsed_ms = (time.perf_counter() - started) * 1000
        scored = image
        if not image.faces:  # unannotated: its size as decoded (EXIF orientation applied)
            scored = dataclasses.replace(image, width=pixels.shape[1], height=pixels.shape[0])
        report.add(score_image(scored, boxes, margin, elapsed_ms), image.path.name)
    return report


def evaluate_strategy(images: Sequence[AnnotatedImage], strategy: Strategy, models_dir: Path, margin: float) -> Report:
    """`evaluate` with the detector the worker builds for `strategy`."""
    with ScanDetector(strategy, models_dir) as detector:
        return evaluate(images, lambda pixels: [d.box for d in detector.detect(pixels)], margin)


def format_table(reports: dict[str, Report]) -> str:
    """A side-by-side text table of reports (one column per configuration)."""
    rows: list[tuple[str, list[str]]] = [
        ("faces", [str(sum(n for _, n in r.by_bucket.values())) for r in reports.values()]),
        ("masked share", [f"{r.masked_share:.1%}" for r in reports.values()]),
    ]
    for label, _, _ in HEIGHT_BUCKETS:
        rows.append((f"  height {label}", [_share(*r.by_bucket[label]) for r in reports.values()]))
    rows += [
        ("WIDER hard list", [_share(*r.hard) for r in reports.values()]),
        ("detections matching no face", [f"{r.unmatched} of {r.detections}" for r in reports.values()]),
        ("  share", [f"{r.unmatched / max(r.detections, 1):.1%}" for r in reports.values()]),
        ("photos with a detection", [f"{r.images_with_detections} of {r.images}" for r in reports.values()]),
        ("non-face pixels masked", [f"{r.nonface_masked / max(r.nonface, 1):.2%}" for r in reports.values()]),
        ("detection ms per image", [f"{r.detect_ms / max(r.images, 1):.1f}" for r in reports.values()]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    column = max(len(text) for text in [*reports, *(cell for _, cells in rows for cell in cells)]) + 2
    lines = [" " * width + "".join(f"{name:>{column}}" for name in reports)]
    lines += [f"{label:<{width}}" + "".join(f"{cell:>{column}}" for cell in cells) for label, cells in rows]
    return "\n".join(lines)


def format_per_image(reports: dict[str, Report]) -> str:
    """Detections per photo, one row per photo and a column per configuration (for unannotated photos)."""
    first = next(iter(reports.values()))
    names = [name for name, _ in first.per_image]
    width = max((len(n) for n in names), default=5) + 2
    column = max(len(name) for name in reports) + 2
    lines = [" " * width + "".join(f"{name:>{column}}" for name in reports)]
    for index, photo in enumerate(names):
        counts = [str(r.per_image[index][1]) for r in reports.values()]
        lines.append(f"{photo:<{width}}" + "".join(f"{count:>{column}}" for count in counts))
    return "\n".join(lines)


def _share(done: int, total: int) -> str:
    return f"{done / total:.1%}" if total else "-"
