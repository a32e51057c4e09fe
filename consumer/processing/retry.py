"""Where a failed record goes next, and what a record's failure history is.

A record consumed from the requests topic has no history. One consumed from a
retry topic carries `RetryHeaders`: how often it failed, when first, and where
it was first published. `route_failure` applies the error tree's decision:

    InvalidInput                         -> dead-letter now
    TransientFailure, tiers left         -> retry tier N (delay N), N = attempts so far
    TransientFailure, no tier left       -> dead-letter, retryable=true (redrive later)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from consumer.errors import RecordFailure
from consumer.records import Record, from_headers, header_name
from schemas import RetryHeaders

REDRIVE_COUNT_HEADER = header_name(RetryHeaders, "faceguard_redrive_count")
NOT_BEFORE_HEADER = header_name(RetryHeaders, "faceguard_not_before")


@dataclass(frozen=True)
class History:
    """What happened to a request before this attempt."""

    original_topic: str
    original_partition: int
    original_offset: int
    original_timestamp_ms: int
    attempts: int = 0  # failed attempts before this one
    first_failed_at: datetime | None = None
    redrive_count: int = 0


def history_of(record: Record, retry_topics: list[str]) -> History:
    """The history a consumed record carries. Retry headers count only on retry topics."""
    if record.topic in retry_topics:
        try:
            retry = from_headers(RetryHeaders, record.headers)
        except ValidationError:
            pass  # a retry record without our headers: treat it as fresh rather than lose it
        else:
            return History(
                original_topic=retry.faceguard_original_topic,
                original_partition=retry.faceguard_original_partition,
                original_offset=retry.faceguard_original_offset,
                original_timestamp_ms=retry.faceguard_original_timestamp_ms,
                attempts=retry.faceguard_attempts,
                first_failed_at=retry.faceguard_first_failed_at,
                redrive_count=retry.faceguard_redrive_count,
            )
    redrives = _int_or_zero(record.header(REDRIVE_COUNT_HEADER))
    return History(record.topic, record.partition, record.offset, record.timestamp_ms, redrive_count=redrives)


def not_before(record: Record) -> float:
    """Epoch seconds before which a retry record must not run (0 when it has no such header)."""
    value = record.header(NOT_BEFORE_HEADER)
    try:
        return datetime.fromisoformat(value.decode()).timestamp() if value else 0.0
    except (UnicodeDecodeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class RetryRoute:
    """Send to retry tier `tier` (1-based): topic and delay."""

    tier: int
    topic: str
    delay_s: float


def route_failure(
    failure: RecordFailure, history: History, topics: Sequence[str], delays_s: Sequence[float]
) -> RetryRoute | None:
    """The retry tier for a failed record, or None to dead-letter it."""
    attempts = history.attempts + 1
    if not failure.retryable or attempts > len(delays_s):
        return None
    return RetryRoute(attempts, topics[attempts - 1], delays_s[attempts - 1])


def now_utc() -> datetime:
    return datetime.now(UTC)


def _int_or_zero(raw: bytes | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0
