"""CloudEvents on outputs and requests: the SDK's binary binding on what we publish, ids stable per consumed
record, and requests read from either content mode."""

from __future__ import annotations

import json

import pytest
from cloudevents.kafka import KafkaMessage, from_binary

from consumer.errors import InvalidRequest
from consumer.processing.envelope import EventType, enveloped, event_id, source_of
from consumer.processing.request import RequestLimits, parse_request
from consumer.records import JSON_HEADERS, OutgoingRecord, Record
from consumer.topics import Topics

TOPICS = Topics("req", "masked", "meta", "dlq", (10.0,))
ORIGIN = Record("req", 2, 41, b"r-1", b"{}", 0)


def test_outputs_become_binary_cloudevents_with_stable_ids() -> None:
    outputs = [
        OutgoingRecord(
            "masked", b"r-1", b"\x89PNG", [("content-type", b"image/png"), ("faceguard-request-id", b"r-1")]
        ),
        OutgoingRecord("meta", b"r-1", b'{"request_id": "r-1"}', list(JSON_HEADERS)),
        OutgoingRecord("req.retry-1", b"r-1", b"{}", [("faceguard-request-id", b"r-1")]),
    ]
    first = enveloped(outputs, ORIGIN, "r-1", source_of("g"), TOPICS)
    again = enveloped(outputs, ORIGIN, "r-1", source_of("g"), TOPICS)
    events = [
        from_binary(KafkaMessage(dict(r.headers), r.key, r.value or b""), data_unmarshaller=lambda d: d) for r in first
    ]
    assert [e["type"] for e in events] == [EventType.IMAGE_MASKED, EventType.FACES_DETECTED, EventType.REQUEST_RETRIED]
    assert [e["id"] for e in events] == [dict(r.headers)["ce_id"].decode() for r in again]  # the same record again
    assert len({e["id"] for e in events}) == 3
    assert events[1]["dataschema"] == "urn:faceguard:schema:face_metadata_event:v1"
    assert "dataschema" not in events[0]
    assert {e["subject"] for e in events} == {"r-1"}
    assert events[0].data == b"\x89PNG"
    assert [n for n, _ in first[0].headers].count("content-type") == 1  # ours replaced, not doubled
    assert event_id(ORIGIN, EventType.IMAGE_MASKED) != event_id(
        Record("req", 2, 42, None, None, 0), EventType.IMAGE_MASKED
    )


def request_record(value: bytes, headers: list[tuple[str, bytes]]) -> Record:
    return Record("req", 0, 7, None, value, 0, headers)


def test_requests_are_read_from_either_content_mode() -> None:
    limits = RequestLimits()
    plain = request_record(b'{"request_id": "a", "image_ref": "file:///x.png"}', [])
    assert parse_request(plain, limits).request_id == "a"
    binary = request_record(b'{"image_ref": "file:///x.png"}', [("ce_id", b"ce-9"), ("ce_specversion", b"1.0")])
    assert parse_request(binary, limits).request_id == "ce-9"
    envelope = {"specversion": "1.0", "id": "ce-5", "source": "s", "type": "t", "data": {"image_ref": "file:///y.png"}}
    for headers in ([("content-type", b"application/cloudevents+json")], [("content-type", b"application/json")]):
        request = parse_request(request_record(json.dumps(envelope).encode(), headers), limits)
        assert (request.request_id, request.image_ref) == ("ce-5", "file:///y.png")
    nested = b'{"request_id": "n", "image_ref": "file:///z.png", "attributes": {"specversion": "x"}}'
    assert parse_request(request_record(nested, []), limits).request_id == "n"  # not an envelope
    with pytest.raises(InvalidRequest, match="not a structured CloudEvent"):
        parse_request(
            request_record(b'{"specversion": "1.0"}', [("content-type", b"application/cloudevents+json")]), limits
        )
    too_deep = b'{"specversion": "1.0", "data": ' + b"[" * 100 + b"]" * 100 + b"}"
    with pytest.raises(InvalidRequest, match="nest"):
        parse_request(request_record(too_deep, [("content-type", b"application/cloudevents+json")]), limits)
