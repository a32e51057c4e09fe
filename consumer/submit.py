"""`faceguard submit`: publish image requests for local files, folders and URLs."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import JsonValue

from consumer.config import Settings
from consumer.inputs import expand_images
from consumer.kafka_admin import publish
from consumer.records import OutgoingRecord
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


def submit(settings: Settings, requests: list[ImageRequest]) -> list[str | None]:
    """Publish `requests` to the requests topic keyed by request id; returns each delivery error or None."""
    records = [
        OutgoingRecord(
            settings.topic_requests,
            request.request_id.encode(),
            request.model_dump_json(exclude_none=True).encode(),
            [("content-type", b"application/json")],
        )
        for request in requests
    ]
    return publish(settings, records)
