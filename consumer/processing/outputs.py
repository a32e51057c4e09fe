"""The records a processed request produces: masked image and metadata, a retry, or a dead letter.

Pure functions from typed results to `OutgoingRecord`s; header names and values
follow the contracts in `schemas`. Retry and dead-letter records carry the
request, never fetched image bytes: a consumed value that is not JSON text
(binary, possibly an image sent inline) is left out of the DLQ unless
`dlq_keep_binary_values` is set, and a header says what was dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from consumer.errors import RecordFailure
from consumer.processing.pipeline import AnonymizedImage
from consumer.processing.retry import History, RetryRoute, now_utc
from consumer.records import JSON_HEADERS, OutgoingRecord, Record, to_headers
from consumer.topics import Topics
from schemas import (
    STORED_IMAGE_CONTENT_TYPE,
    DeadLetterHeaders,
    FaceMetadataEvent,
    MaskedImageHeaders,
    RetryHeaders,
)

MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class OutputOptions:
    """Where a processed record's outputs go, and what they say of who made them."""

    topics: Topics
    worker_id: str
    group_id: str
    keep_binary_values: bool  # copy binary (possibly image) request values into the DLQ


@dataclass(frozen=True)
class FailedRecord:
    """A consumed record that could not be processed, with what is known about it."""

    record: Record
    failure: RecordFailure
    history: History
    request_id: str | None = None


def success_records(options: OutputOptions, result: AnonymizedImage, event: FaceMetadataEvent) -> list[OutgoingRecord]:
    """The masked-image record and the metadata record for one request, both keyed by its id.

    The masked-image record holds the image, or the `StoredImage` the claim check wrote.
    """
    key = event.request_id.encode()
    if event.output is None:
        value, content_type = result.data, result.format.content_type
    else:
        value, content_type = event.output.model_dump_json().encode(), STORED_IMAGE_CONTENT_TYPE
    headers = MaskedImageHeaders(
        content_type=content_type,
        faceguard_request_id=event.request_id,
        faceguard_face_count=event.total_count,
    )
    return [
        OutgoingRecord(options.topics.masked, key, value, to_headers(headers)),
        OutgoingRecord(
            options.topics.metadata,
            key,
            event.model_dump_json().encode(),
            list(JSON_HEADERS),
        ),
    ]


def _failure_fields(options: OutputOptions, failed: FailedRecord) -> dict[str, object]:
    history, now = failed.history, now_utc()
    return {
        "faceguard_error_class": failed.failure.error_class,
        "faceguard_error_reason": str(failed.failure)[:MAX_REASON_CHARS],
        "faceguard_original_topic": history.original_topic,
        "faceguard_original_partition": history.original_partition,
        "faceguard_original_offset": history.original_offset,
        "faceguard_original_timestamp_ms": history.original_timestamp_ms,
        "faceguard_request_id": failed.request_id,
        "faceguard_attempts": history.attempts + 1,
        "faceguard_first_failed_at": history.first_failed_at or now,
        "faceguard_redrive_count": history.redrive_count,
        "faceguard_worker_id": options.worker_id,
    }


def retry_record(options: OutputOptions, failed: FailedRecord, route: RetryRoute) -> OutgoingRecord:
    """The request again, on retry tier `route.tier`, not to run before its delay has passed."""
    headers = RetryHeaders.model_validate(
        {**_failure_fields(options, failed), "faceguard_not_before": now_utc() + timedelta(seconds=route.delay_s)}
    )
    return OutgoingRecord(route.topic, failed.record.key, failed.record.value, to_headers(headers))


def dead_letter_record(options: OutputOptions, failed: FailedRecord) -> OutgoingRecord:
    """A dead-letter record: the request (never image bytes), the reason and its origin in headers."""
    record = failed.record
    value, dropped = dead_letter_value(record.value, options.keep_binary_values)
    headers = DeadLetterHeaders.model_validate(
        {
            **_failure_fields(options, failed),
            "faceguard_retryable": "true" if failed.failure.retryable else "false",
            "faceguard_original_key": None if record.key is None else record.key.decode(errors="backslashreplace"),
            "faceguard_consumer_group": options.group_id,
            "faceguard_failed_at": now_utc(),
            "faceguard_value_dropped": dropped,
        }
    )
    return OutgoingRecord(options.topics.dlq, record.key, value, to_headers(headers))


def dead_letter_value(value: bytes | None, keep_binary: bool) -> tuple[bytes | None, str | None]:
    """The value a dead letter may carry, and a description of what was dropped (None: nothing)."""
    if value is None or keep_binary:
        return value, None
    try:
        json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        if _is_text(value):
            return value, None  # malformed JSON text is the request as sent; keep it for the operator
        return None, f"{len(value)} binary bytes, sha256 {hashlib.sha256(value).hexdigest()}"
    return value, None


def _is_text(value: bytes) -> bool:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
