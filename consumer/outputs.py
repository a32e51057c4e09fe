"""The records a processed request produces: masked image and metadata, or a dead letter.

Pure functions from typed results to `OutgoingRecord`s; header names and values
follow the contracts in `schemas`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.config import Settings
from consumer.errors import RecordFailure
from consumer.kafka_io import Headers, OutgoingRecord, Record
from consumer.pipeline import AnonymizedImage
from schemas import DeadLetterHeaders, FaceMetadataEvent, MaskedImageHeaders

MAX_REASON_CHARS = 1000


def header_list(model: MaskedImageHeaders | DeadLetterHeaders) -> Headers:
    """A contract's fields as Kafka headers: alias names, UTF-8 string values, None left out."""
    values = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return [(name, str(value).encode()) for name, value in values.items()]


def success_records(settings: Settings, result: AnonymizedImage, event: FaceMetadataEvent) -> list[OutgoingRecord]:
    """The masked-image record and the metadata record for one request, both keyed by its id."""
    key = event.request_id.encode()
    headers = MaskedImageHeaders(
        content_type=result.format.content_type,
        faceguard_request_id=event.request_id,
        faceguard_face_count=event.total_count,
    )
    return [
        OutgoingRecord(settings.topic_masked, key, result.data, header_list(headers)),
        OutgoingRecord(
            settings.topic_metadata,
            key,
            event.model_dump_json().encode(),
            [("content-type", b"application/json")],
        ),
    ]


def dead_letter_record(
    settings: Settings, record: Record, failure: RecordFailure, request_id: str | None
) -> OutgoingRecord:
    """A dead-letter record for `record`: its value unchanged, the reason in headers."""
    headers = DeadLetterHeaders(
        faceguard_error_class=failure.error_class,
        faceguard_error_reason=str(failure)[:MAX_REASON_CHARS],
        faceguard_retryable="true" if failure.retryable else "false",
        faceguard_original_topic=record.topic,
        faceguard_original_partition=record.partition,
        faceguard_original_offset=record.offset,
        faceguard_original_timestamp_ms=record.timestamp_ms,
        faceguard_request_id=request_id,
        faceguard_worker_id=settings.worker_id,
        faceguard_failed_at=datetime.now(UTC),
    )
    return OutgoingRecord(settings.topic_dlq, record.key, record.value, header_list(headers))
