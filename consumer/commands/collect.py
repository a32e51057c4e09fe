"""`faceguard collect`: write what the worker published into a folder.

Masked images become `<request_id><ext>`, metadata events `<request_id>.json`,
and dead letters one JSON line each in `dead-letters.jsonl` (headers and the
request value, never image bytes).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from consumer.imaging.types import ImageFormat
from consumer.kafka.clients import OutputReader
from consumer.kafka.options import ClientConfig
from consumer.records import Record
from consumer.topics import Topics
from schemas import STORED_IMAGE_CONTENT_TYPE

EXTENSIONS = {image_format.content_type: image_format.extension for image_format in ImageFormat}
EXTENSIONS[STORED_IMAGE_CONTENT_TYPE] = ".stored.json"  # claim check: where the image was stored


@dataclass
class Collected:
    images: set[str] = field(default_factory=set)
    metadata: set[str] = field(default_factory=set)
    dead_letters: int = 0

    @property
    def finished(self) -> int:
        """Requests with a final outcome: both outputs written, or dead-lettered."""
        return len(self.images & self.metadata) + self.dead_letters


def collect(client: ClientConfig, topics: Topics, out: Path, expect: int | None, timeout_s: float) -> Collected:
    """Copy outputs into `out` until `expect` requests are finished or `timeout_s` passes."""
    out.mkdir(parents=True, exist_ok=True)
    reader = OutputReader(client, topics.outputs, f"faceguard-collect-{uuid.uuid4()}")
    collected = Collected()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and (expect is None or collected.finished < expect):
            for record in reader.poll_batch(100, 0.5):
                write_record(topics, record, out, collected)
    finally:
        reader.close()
    return collected


def write_record(topics: Topics, record: Record, out: Path, collected: Collected) -> None:
    # Keys become file names: keep them inside `out` whatever a producer put there.
    key = (record.key or b"").decode(errors="replace").replace("/", "_").lstrip(".") or "no-key"
    headers = {name: value.decode(errors="replace") for name, value in record.headers}
    if record.topic == topics.masked:
        (out / f"{key}{EXTENSIONS.get(headers.get('content-type', ''), '.bin')}").write_bytes(record.value or b"")
        collected.images.add(key)
    elif record.topic == topics.metadata:
        (out / f"{key}.json").write_text(json.dumps(json.loads(record.value or b"{}"), indent=2) + "\n")
        collected.metadata.add(key)
    else:
        line = {"headers": headers, "value": (record.value or b"").decode(errors="replace")[:4096]}
        with (out / "dead-letters.jsonl").open("a") as file:
            file.write(json.dumps(line) + "\n")
        collected.dead_letters += 1
