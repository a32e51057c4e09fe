"""Turning consumed records into requests, and failures into dead letters, without a broker."""

from __future__ import annotations

import pytest

from consumer.config import Settings
from consumer.errors import InvalidRequest, SourceUnavailable
from consumer.kafka_io import Record
from consumer.outputs import dead_letter_record
from consumer.worker import parse_request
from schemas import DeadLetterHeaders


def record(value: bytes | None) -> Record:
    return Record("requests", 2, 41, b"k", value, 1_700_000_000_000, [])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "ImageRequest contract"),
        (b'{"request_id": "a"}', "image_ref: Field required"),
    ],
)
def test_unparseable_requests_say_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(record(value))


def test_dead_letters_keep_the_value_and_carry_the_contract_headers() -> None:
    settings = Settings(worker_id="w-1")
    out = dead_letter_record(settings, record(b'{"x": 1}'), SourceUnavailable("HTTP 503 for https://h/a.jpg"), "r-1")
    assert out.topic == settings.topic_dlq
    assert out.key == b"k"
    assert out.value == b'{"x": 1}'
    headers = {k: v.decode() for k, v in out.headers}
    parsed = DeadLetterHeaders.model_validate(headers)
    assert parsed.faceguard_retryable == "true"
    assert parsed.faceguard_original_offset == 41
    assert headers["faceguard-error-class"] == "source_unavailable"
    assert headers["faceguard-request-id"] == "r-1"
    assert headers["faceguard-worker-id"] == "w-1"
