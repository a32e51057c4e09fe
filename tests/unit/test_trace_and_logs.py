"""Trace context carried from requests to outputs, and JSON log lines that hold only known fields."""

from __future__ import annotations

import json
import logging

import pytest

from consumer.logs import JsonFormatter
from consumer.records import OutgoingRecord
from consumer.trace import child_of, traced

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_request_span_continues_the_trace_under_a_new_span() -> None:
    context = child_of([("other", b"x"), ("traceparent", PARENT.encode())])
    assert context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context.span_id != "00f067aa0ba902b7"
    assert context.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", b"garbage")],
        [("traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01")],  # all-zero trace id
        [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")],  # all-zero span id
    ],
)
def test_without_a_valid_parent_a_new_trace_starts(headers: list[tuple[str, bytes]]) -> None:
    first, second = child_of(headers), child_of(headers)
    assert len(first.trace_id) == 32
    assert first.trace_id != second.trace_id
    assert first.trace_id != "0" * 32


def test_outputs_carry_exactly_one_traceparent() -> None:
    record = OutgoingRecord("t", b"k", b"v", [("traceparent", b"old"), ("content-type", b"image/png")])
    context = child_of([("traceparent", PARENT.encode())])
    [out] = traced([record], context)
    assert out.headers == [("content-type", b"image/png"), ("traceparent", context.traceparent.encode())]


def test_json_lines_hold_the_known_fields_and_nothing_else_attached() -> None:
    record = logging.LogRecord("consumer.process", logging.INFO, __file__, 1, "masked request=%s", ("r1",), None)
    record.__dict__.update(request_id="r1", partition=2, offset=7, image=b"\x89PNG...", value=b"{...}")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "masked request=r1"
    assert line["request_id"] == "r1"
    assert (line["partition"], line["offset"]) == (2, 7)
    assert line["level"] == "info"
    assert "image" not in line
    assert "value" not in line
