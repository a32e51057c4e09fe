"""`faceguard anonymize`: mask local image files without Kafka, with the worker's pipeline.

Where every output goes is planned first (`targets.py`: nothing an input or an
earlier output is overwritten by accident). The files are then masked by
`jobs` threads, each with its own anonymizer (one detector per thread, sharing
one pixel budget, as the worker's processing threads have them), and each
output is written to a temporary file beside its target and renamed into place,
so an interrupted run never leaves a half-written image.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from consumer.commands.targets import STDIO, Target
from consumer.errors import ImageTooLarge, RecordFailure
from consumer.processing.pipeline import Anonymizer, Stopwatch, metadata_event
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
    """How to mask: the options, what else to write, and how many threads."""

    mask: MaskOptions | None
    with_metadata: bool  # write each image's metadata event beside it
    worker_id: str  # named in the metadata events
    jobs: int  # processing threads
    max_bytes: int  # largest input read
    preview: bool = False  # draw the candidates (kept green, rejected red) instead of masking


class Anonymizers:
    """One anonymizer per thread, made on the thread's first image, closed together."""

    def __init__(self, make: Callable[[], Anonymizer]) -> None:
        self._make = make
        self._local = threading.local()
        self._made: list[Anonymizer] = []
        self._lock = threading.Lock()

    def mine(self) -> Anonymizer:
        anonymizer: Anonymizer | None = getattr(self._local, "anonymizer", None)
        if anonymizer is None:
            anonymizer = self._local.anonymizer = self._make()
            with self._lock:
                self._made.append(anonymizer)
        return anonymizer

    def close(self) -> None:
        for anonymizer in self._made:
            anonymizer.detector.close()


def anonymize_files(job: FileJob, targets: list[Target], make: Callable[[], Anonymizer]) -> list[FileOutcome]:
    """Mask every target's source into its output; one outcome per target, in their order.
    Raises SetupError for unusable models (on the first thread that loads them)."""
    anonymizers = Anonymizers(make)
    try:
        with ThreadPoolExecutor(max(1, min(job.jobs, len(targets)))) as pool:
            futures = [pool.submit(anonymize_target, job, anonymizers, target) for target in targets]
            bar = tqdm(total=len(targets), unit="img", disable=len(targets) < PROGRESS_FROM, file=sys.stderr)
            with bar:
                for _ in as_completed(futures):
                    bar.update()
            return [future.result() for future in futures]
    finally:
        anonymizers.close()


def anonymize_target(job: FileJob, anonymizers: Anonymizers, target: Target) -> FileOutcome:
    try:
        data = read_input(target.source, job.max_bytes)
        anonymizer = anonymizers.mine()
        if job.preview:
            drawn, _format = anonymizer.preview(data, job.mask, target.format)
            write_atomically(target.output, drawn)
            return FileOutcome(target.source, target.output, 0, None)
        clock = Stopwatch()
        result = anonymizer.anonymize(data, job.mask, fetch_ms=clock.lap(), output_format=target.format)
    except RecordFailure as failure:
        return FileOutcome(target.source, None, 0, str(failure))
    write_atomically(target.output, result.data)
    if job.with_metadata and target.output != STDIO:
        name = "stdin" if target.source == STDIO else safe_id(target.source.stem)
        ref = "file:///dev/stdin" if target.source == STDIO else target.source.resolve().as_uri()
        request = ImageRequest(request_id=name, image_ref=ref, mask=job.mask)
        event = metadata_event(request, result, anonymizer.detector.info, job.worker_id, source=None)
        write_atomically(
            target.output.with_name(target.output.name + ".json"), event.model_dump_json(indent=2).encode() + b"\n"
        )
    return FileOutcome(target.source, target.output, len(result.faces), None)


def read_input(source: Path, max_bytes: int) -> bytes:
    """The bytes of `source` (`STDIO`: standard input). Raises ImageTooLarge over `max_bytes`."""
    if source != STDIO:
        return read_file(source, max_bytes)
    data = sys.stdin.buffer.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"standard input has more than the limit of {max_bytes} bytes")
    return data


def write_atomically(path: Path, data: bytes) -> None:
    """`data` into `path` (`STDIO`: standard output) by way of a temporary file renamed over it."""
    if path == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with temporary_beside(path) as temporary:
        temporary.write_bytes(data)
        os.replace(temporary, path)


@contextmanager
def temporary_beside(path: Path) -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def safe_id(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-")
    return cleaned[:128] or "image"
