"""`faceguard submit`: publish image requests for local files, folders and URLs."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import JsonValue

from consumer.commands.inputs import expand_images
from consumer.kafka.clients import publish
from consumer.kafka.options import ClientConfig, ProducerOptions
from consumer.records import JSON_HEADERS, OutgoingRecord
from schemas import ImageRequest, MaskOptions


def references(targets: list[str]) -> list[str]:
    """Image references for command-line targets: URLs as given, paths as absolute file:// URLs."""
    refs: list[str] = []
    for target in targets:
        if "://" in target:
            refs.append(target)
        else:
            refs.extend(path.resolve().as_uri() for path, _ in expand_images([Path(target)]))
    return refs


def build_requests(refs: list[str], mask: MaskOptions | None, attributes: dict[str, JsonValue]) -> list[ImageRequest]:
    return [ImageRequest(request_id=uuid.uuid4().hex, image_ref=ref, mask=mask, attributes=attributes) for ref in refs]


def submit(
    client: ClientConfig, producer: ProducerOptions, topic: str, requests: list[ImageRequest]
) -> list[str | None]:
    """Publish `requests` to `topic` keyed by request id; returns each delivery error or None."""
    records = [
        OutgoingRecord(
            topic,
            request.request_id.encode(),
            request.model_dump_json(exclude_none=True).encode(),
            list(JSON_HEADERS),
        )
        for request in requests
    ]
    return publish(client, producer, records)
