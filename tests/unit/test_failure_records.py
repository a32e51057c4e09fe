"""Consumed records into requests; failures into retry or dead-letter records that carry no image bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from consumer.config import Settings
from consumer.errors import InvalidRequest, NotAnImage, SourceNotFound, SourceUnavailable
from consumer.processing.outputs import FailedRecord, dead_letter_record, retry_record
from consumer.processing.request import RequestLimits, parse_request
from consumer.processing.retry import History, history_of, not_before, route_failure
from consumer.records import Record, from_headers, to_headers
from schemas import DeadLetterHeaders, RetryHeaders

SETTINGS = Settings(worker_id="w-1", group_id="g", retry_delays_s=[10.0, 60.0])
REQUEST = b'{"request_id": "r-1", "image_ref": "https://h/a.jpg"}'


def record(
    value: bytes | None, topic: str = "faceguard.requests", headers: list[tuple[str, bytes]] | None = None
) -> Record:
    return Record(topic, 2, 41, b"r-1", value, 1_700_000_000_000, headers or [])


def headers_of(out_headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {name: value.decode() for name, value in out_headers}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b"[1, 2]", "ImageRequest contract"),
        (b'{"request_id": "a"}', "image_ref: Field required"),
    ],
)
def test_unparseable_requests_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(record(value), RequestLimits())


def test_transient_failures_climb_the_tiers_then_dead_letter() -> None:
    topics, delays = SETTINGS.topics.retries, SETTINGS.retry_delays_s
    assert topics == ["faceguard.requests.retry-1", "faceguard.requests.retry-2"]
    fresh = History("faceguard.requests", 2, 41, 0)
    first = route_failure(SourceUnavailable("503"), fresh, topics, delays)
    assert first is not None
    assert (first.tier, first.topic, first.delay_s) == (1, topics[0], 10.0)
    second = route_failure(
        SourceUnavailable("503"), History("faceguard.requests", 2, 41, 0, attempts=1), topics, delays
    )
    assert second is not None
    assert second.tier == 2
    assert route_failure(SourceUnavailable("503"), History("t", 0, 0, 0, attempts=2), topics, delays) is None
    assert route_failure(NotAnImage("text"), fresh, topics, delays) is None


def test_a_retry_record_carries_its_history_and_due_time() -> None:
    failed = FailedRecord(record(REQUEST), SourceUnavailable("HTTP 503"), history_of(record(REQUEST), []), "r-1")
    route = route_failure(failed.failure, failed.history, SETTINGS.topics.retries, SETTINGS.retry_delays_s)
    assert route is not None
    before = datetime.now(UTC)
    out = retry_record(SETTINGS.output_options, failed, route)
    assert out.topic == "faceguard.requests.retry-1"
    assert (out.key, out.value) == (b"r-1", REQUEST)
    parsed = RetryHeaders.model_validate(headers_of(out.headers))
    assert parsed.faceguard_attempts == 1
    assert parsed.faceguard_original_offset == 41
    assert parsed.faceguard_not_before >= before + timedelta(seconds=10)

    # Consumed again from the retry topic, the record remembers where it came from and how often it failed.
    again = Record(out.topic, 0, 7, out.key, out.value, 1_700_000_100_000, out.headers)
    history = history_of(again, SETTINGS.topics.retries)
    assert (history.original_topic, history.original_offset, history.attempts) == ("faceguard.requests", 41, 1)
    assert history.first_failed_at == parsed.faceguard_first_failed_at
    assert not_before(again) == parsed.faceguard_not_before.timestamp()


def test_retry_headers_on_the_requests_topic_are_not_trusted() -> None:
    forged = [("faceguard-attempts", b"99"), ("faceguard-redrive-count", b"2")]
    history = history_of(record(REQUEST, headers=forged), SETTINGS.topics.retries)
    assert history.attempts == 0
    assert history.redrive_count == 2


def test_dead_letters_carry_the_request_and_the_contract_headers() -> None:
    history = History("faceguard.requests", 2, 41, 1_700_000_000_000, attempts=2, redrive_count=1)
    out = dead_letter_record(
        SETTINGS.output_options, FailedRecord(record(REQUEST), SourceUnavailable("HTTP 503"), history, "r-1")
    )
    assert out.topic == SETTINGS.topic_dlq
    assert (out.key, out.value) == (b"r-1", REQUEST)
    parsed = DeadLetterHeaders.model_validate(headers_of(out.headers))
    assert parsed.faceguard_retryable == "true"
    assert parsed.faceguard_attempts == 3
    assert parsed.faceguard_redrive_count == 1
    assert parsed.faceguard_consumer_group == "g"
    assert parsed.faceguard_original_key == "r-1"
    assert parsed.faceguard_worker_id == "w-1"
    assert parsed.faceguard_value_dropped is None


def test_binary_values_stay_out_of_the_dead_letter_topic() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10
    failed = FailedRecord(record(jpeg), InvalidRequest("not JSON"), History("faceguard.requests", 2, 41, 0))
    out = dead_letter_record(SETTINGS.output_options, failed)
    assert out.value is None
    assert "2564 binary bytes, sha256 " in headers_of(out.headers)["faceguard-value-dropped"]
    kept = dead_letter_record(SETTINGS.model_copy(update={"dlq_keep_binary_values": True}).output_options, failed)
    assert kept.value == jpeg
    text = dead_letter_record(
        SETTINGS.output_options, FailedRecord(record(b"{broken json"), InvalidRequest("x"), failed.history)
    )
    assert text.value == b"{broken json"


def test_headers_round_trip_and_other_headers_are_ignored() -> None:
    failed = FailedRecord(record(REQUEST), SourceNotFound("gone"), History("faceguard.requests", 2, 41, 0))
    out = dead_letter_record(SETTINGS.output_options, failed)
    parsed = from_headers(DeadLetterHeaders, [*out.headers, ("traceparent", b"00-abc-def-01")])
    assert to_headers(parsed) == out.headers
    with pytest.raises(ValidationError):
        from_headers(DeadLetterHeaders, [("faceguard-attempts", b"1")])
