"""`faceguard anonymize`: mask local image files without Kafka, with the worker's pipeline."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from consumer.config import Settings
from consumer.errors import RecordFailure
from consumer.file_source import read_file
from consumer.inputs import expand_images
from consumer.pipeline import Anonymizer, Stopwatch, metadata_event
from consumer.scan import ScanDetector
from schemas import ImageRequest, MaskOptions

log = logging.getLogger(__name__)
PROGRESS_FROM = 6  # files; fewer finish before a bar would help


@dataclass(frozen=True)
class FileOutcome:
    source: Path
    output: Path | None
    faces: int
    error: str | None


def anonymize_files(
    settings: Settings, inputs: list[Path], out_dir: Path, mask: MaskOptions | None, with_metadata: bool
) -> list[FileOutcome]:
    """Mask every image under `inputs` into `out_dir`, keeping relative paths; one outcome per file.

    Raises FileNotFoundError for a missing input and SetupError for unusable models.
    """
    files = expand_images(inputs)
    outcomes = []
    with ScanDetector(settings.strategy, settings.models_dir) as detector:
        anonymizer = Anonymizer(detector, settings)
        for path, relative in tqdm(files, unit="img", disable=len(files) < PROGRESS_FROM, file=sys.stderr):
            outcomes.append(
                anonymize_file(settings, anonymizer, path, out_dir / relative, mask=mask, with_metadata=with_metadata)
            )
    return outcomes


def anonymize_file(
    settings: Settings,
    anonymizer: Anonymizer,
    path: Path,
    target: Path,
    *,
    mask: MaskOptions | None,
    with_metadata: bool,
) -> FileOutcome:
    try:
        clock = Stopwatch()
        data = read_file(path, settings.max_image_bytes)
        result = anonymizer.anonymize(data, mask, fetch_ms=clock.lap())
    except RecordFailure as failure:
        return FileOutcome(path, None, 0, str(failure))
    target = (
        target.with_suffix(result.format.extension)
        if target.suffix.lower() not in (".jpeg", result.format.extension)
        else target
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(result.data)
    if with_metadata:
        request = ImageRequest(request_id=safe_id(path.stem), image_ref=path.resolve().as_uri(), mask=mask)
        event = metadata_event(request, result, anonymizer.detector.info, settings.worker_id, source=None)
        target.with_name(target.name + ".json").write_text(event.model_dump_json(indent=2) + "\n")
    return FileOutcome(path, target, len(result.faces), None)


def safe_id(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-")
    return cleaned[:128] or "image"
