"""The records a processed request produces: masked image and metadata, a retry, or a dead letter.

Pure functions from typed results to `OutgoingRecord`s; header names and values
follow the contracts in `schemas`. Retry and dead-letter records carry the
request, never fetched image bytes: a consumed value that is not JSON text
(binary, possibly an image sent inline) is left out of the DLQ unless
`dlq_keep_binary_values` is set, and a header says what was dropped. Every
output fits in a record: a value over the request limit is cut to it, a key
over it is replaced by its sha256 (headers say so), and a metadata event too
large for a record is refused as `ImageTooLarge`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from consumer.errors import ImageTooLarge, RecordFailure
from consumer.processing.pipeline import AnonymizedImage
from consumer.processing.request import RequestLimits
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
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # what text has none of


@dataclass(frozen=True)
class OutputOptions:
    """Where a processed record's outputs go, and what they say of who made them."""

    topics: Topics
    worker_id: str
    group_id: str
    keep_binary_values: bool  # copy binary (possibly image) request values into the DLQ
    limits: RequestLimits  # a dead letter keeps at most this much of a request's key and value
    max_record_bytes: int  # the largest record the producer may send


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
    metadata = event.model_dump_json().encode()
    if len(metadata) > options.max_record_bytes:
        raise ImageTooLarge(
            f"the metadata event of {event.total_count} faces has {len(metadata)} bytes, over the record limit "
            f"of {options.max_record_bytes}"
        )
    return [
        OutgoingRecord(options.topics.masked, key, value, to_headers(headers)),
        OutgoingRecord(options.topics.metadata, key, metadata, list(JSON_HEADERS)),
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
    record, limits = failed.record, options.limits
    value, dropped = dead_letter_value(record.value, options.keep_binary_values)
    value, truncated = within(value, limits.max_value_bytes)
    key, original_key = record.key, None
    if key is not None:
        original_key = key.decode(errors="backslashreplace")
        if len(key) > limits.max_key_bytes:
            key = hashlib.sha256(key).hexdigest().encode()
            original_key = f"{original_key[:256]}... ({len(record.key or b'')} bytes, sha256 {key.decode()})"
    headers = DeadLetterHeaders.model_validate(
        {
            **_failure_fields(options, failed),
            "faceguard_retryable": "true" if failed.failure.retryable else "false",
            "faceguard_original_key": original_key,
            "faceguard_consumer_group": options.group_id,
            "faceguard_failed_at": now_utc(),
            "faceguard_value_dropped": dropped,
            "faceguard_value_truncated": truncated,
        }
    )
    return OutgoingRecord(options.topics.dlq, key, value, to_headers(headers))


def within(value: bytes | None, max_bytes: int) -> tuple[bytes | None, str | None]:
    """`value` cut to `max_bytes`, and what was kept of how much (None: all of it)."""
    if value is None or len(value) <= max_bytes:
        return value, None
    return value[:max_bytes], f"kept {max_bytes} of {len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()}"


def dead_letter_value(value: bytes | None, keep_binary: bool) -> tuple[bytes | None, str | None]:
    """The value a dead letter may carry, and a description of what was dropped (None: nothing).

    Text is kept (a request, or malformed JSON the operator will want to see); anything else may be an image
    and is dropped. Decided without parsing: the value may be what made parsing fail."""
    if value is None or keep_binary or is_text(value):
        return value, None
    return None, f"{len(value)} binary bytes, sha256 {hashlib.sha256(value).hexdigest()}"


def is_text(value: bytes) -> bool:
    """UTF-8 without control characters other than tab, line feed and carriage return."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return CONTROL.search(text) is None
