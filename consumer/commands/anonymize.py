"""`faceguard anonymize`: mask local image files without Kafka, with the worker's pipeline."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from consumer.commands.inputs import expand_images
from consumer.detection.scan import ScanDetector
from consumer.detection.strategy import Strategy
from consumer.errors import RecordFailure
from consumer.processing.pipeline import Anonymizer, PipelineOptions, Stopwatch, metadata_event
from consumer.sources.files import read_file
from schemas import ImageRequest, MaskOptions

log = logging.getLogger(__name__)
PROGRESS_FROM = 6  # files; fewer finish before a bar would help


@dataclass(frozen=True)
class FileOutcome:
    source: Path
    output: Path | None
    faces: int
    error: str | None


@dataclass(frozen=True)
class FileJob:
    """What to mask, where the results go, and how."""

    inputs: list[Path]
    out_dir: Path
    mask: MaskOptions | None
    with_metadata: bool  # write each image's metadata event beside it
    worker_id: str  # named in the metadata events
    preview: bool = False  # draw the candidates (kept green, rejected red) instead of masking


def anonymize_files(job: FileJob, strategy: Strategy, models_dir: Path, options: PipelineOptions) -> list[FileOutcome]:
    """Mask every image under `inputs` into `out_dir`, keeping relative paths; one outcome per file.

    Raises FileNotFoundError for a missing input and SetupError for unusable models.
    """
    files = expand_images(job.inputs)
    outcomes = []
    with ScanDetector(strategy, models_dir) as detector:
        anonymizer = Anonymizer(detector, options)
        for path, relative in tqdm(files, unit="img", disable=len(files) < PROGRESS_FROM, file=sys.stderr):
            outcomes.append(anonymize_file(job, anonymizer, options.max_image_bytes, path, job.out_dir / relative))
    return outcomes


def anonymize_file(job: FileJob, anonymizer: Anonymizer, max_bytes: int, path: Path, target: Path) -> FileOutcome:
    if job.preview:
        return preview_file(job, anonymizer, max_bytes, path, target)
    try:
        clock = Stopwatch()
        data = read_file(path, max_bytes)
        result = anonymizer.anonymize(data, job.mask, fetch_ms=clock.lap())
    except RecordFailure as failure:
        return FileOutcome(path, None, 0, str(failure))
    target = (
        target.with_suffix(result.format.extension)
        if target.suffix.lower() not in (".jpeg", result.format.extension)
        else target
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(result.data)
    if job.with_metadata:
        request = ImageRequest(request_id=safe_id(path.stem), image_ref=path.resolve().as_uri(), mask=job.mask)
        event = metadata_event(request, result, anonymizer.detector.info, job.worker_id, source=None)
        target.with_name(target.name + ".json").write_text(event.model_dump_json(indent=2) + "\n")
    return FileOutcome(path, target, len(result.faces), None)


def preview_file(job: FileJob, anonymizer: Anonymizer, max_bytes: int, path: Path, target: Path) -> FileOutcome:
    try:
        drawn, image_format = anonymizer.preview(read_file(path, max_bytes), job.mask)
    except RecordFailure as failure:
        return FileOutcome(path, None, 0, str(failure))
    target = target.with_name(f"{target.stem}.preview{image_format.extension}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(drawn)
    return FileOutcome(path, target, 0, None)


def safe_id(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-")
    return cleaned[:128] or "image"
