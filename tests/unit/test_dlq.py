"""Selecting dead letters, and what a redrive republishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consumer.commands.dlq import DeadLetter, DlqFilter, parse_time, plan_redrive, redrive_record
from consumer.errors import SetupError
from consumer.records import Record
from schemas import DeadLetterHeaders, ErrorClass

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def letter(error_class: ErrorClass, failed_at: datetime, redrives: int = 0, value: bytes | None = b"{}") -> DeadLetter:
    headers = DeadLetterHeaders(
        faceguard_error_class=error_class,
        faceguard_error_reason="why",
        faceguard_original_topic="faceguard.requests",
        faceguard_original_partition=3,
        faceguard_original_offset=17,
        faceguard_original_timestamp_ms=0,
        faceguard_attempts=1,
        faceguard_first_failed_at=failed_at,
        faceguard_redrive_count=redrives,
        faceguard_worker_id="w",
        faceguard_retryable="false",
        faceguard_consumer_group="g",
        faceguard_failed_at=failed_at,
    )
    return DeadLetter(Record("faceguard.dlq", 1, 5, b"req-7", value, 0), headers)


def test_times_are_iso_or_durations_ago() -> None:
    assert parse_time("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_time("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_time("2026-11-24T10:00", NOW) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with pytest.raises(SetupError, match="not a time"):
        parse_time("yesterday", NOW)


def test_filters_combine_class_topic_and_window() -> None:
    missing = letter(ErrorClass.SOURCE_NOT_FOUND, NOW - timedelta(minutes=5))
    old = letter(ErrorClass.SOURCE_NOT_FOUND, NOW - timedelta(days=2))
    broken = letter(ErrorClass.NOT_AN_IMAGE, NOW - timedelta(minutes=5))
    selection = DlqFilter(error_classes=frozenset({ErrorClass.SOURCE_NOT_FOUND}), since=NOW - timedelta(hours=1))
    assert [selection.matches(x) for x in (missing, old, broken)] == [True, False, False]
    assert not DlqFilter(original_topics=frozenset({"other"})).matches(missing)
    assert not DlqFilter(until=NOW - timedelta(hours=1)).matches(missing)
    assert DlqFilter().matches(old)


def test_redrive_goes_to_the_original_topic_with_the_same_key_and_a_higher_count() -> None:
    out = redrive_record(letter(ErrorClass.SOURCE_NOT_FOUND, NOW, redrives=1))
    assert (out.topic, out.key, out.value) == ("faceguard.requests", b"req-7", b"{}")
    headers = dict(out.headers)
    assert headers["faceguard-redrive-count"] == b"2"
    assert headers["faceguard-redriven-from"] == b"faceguard.dlq[1]@5"


def test_requests_redriven_too_often_or_without_a_value_are_refused() -> None:
    ok = letter(ErrorClass.SOURCE_NOT_FOUND, NOW, redrives=2)
    too_often = letter(ErrorClass.SOURCE_NOT_FOUND, NOW, redrives=3)
    dropped = letter(ErrorClass.INVALID_REQUEST, NOW, value=None)
    plan = plan_redrive([ok, too_often, dropped], max_redrives=3)
    assert plan.redrive == [ok]
    assert [why for _, why in plan.refused] == [
        "already redriven 3 times (limit 3)",
        "no request value (a binary value was left out of the DLQ)",
    ]
