"""`faceguard submit`: publish image requests for local files, folders and URLs."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import JsonValue, ValidationError

from consumer.commands.inputs import expand_images
from consumer.commands.targets import UsageError
from consumer.kafka.clients import publish
from consumer.kafka.options import ClientConfig, ProducerOptions
from consumer.records import JSON_HEADERS, OutgoingRecord
from schemas import ImageRequest, MaskOptions


def references(targets: list[str]) -> list[str]:
    """Image references for command-line targets: URLs as given, paths as absolute file:// URLs.
    Raises UsageError for a path that does not exist."""
    refs: list[str] = []
    for target in targets:
        if "://" in target:
            refs.append(target)
            continue
        try:
            refs.extend(path.resolve().as_uri() for path, _ in expand_images([Path(target)]))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from exc
    return refs


def build_requests(refs: list[str], mask: MaskOptions | None, attributes: dict[str, JsonValue]) -> list[ImageRequest]:
    """One request per reference. Raises UsageError naming the first reference a request cannot hold (an
    ftp:// URL, a URL with spaces), so that nothing is published."""
    requests = []
    for ref in refs:
        try:
            requests.append(ImageRequest(request_id=uuid.uuid4().hex, image_ref=ref, mask=mask, attributes=attributes))
        except ValidationError as exc:
            reasons = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
            raise UsageError(f"{ref}: {reasons}") from exc
    return requests


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
