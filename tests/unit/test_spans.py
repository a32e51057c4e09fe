"""OpenTelemetry spans of processed records, exported through the real SDK into its in-memory exporter."""

from __future__ import annotations

import itertools

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from consumer.processing.outcome import OutcomeKind
from consumer.processing.spans import STAGES, ContextOnly, OpenTelemetrySpans, SpanEnd
from consumer.records import Record
from schemas import ErrorClass, StageTimings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TIMINGS = StageTimings(fetch_ms=3.0, decode_ms=2.0, detect_ms=40.0, mask_ms=1.5, encode_ms=4.0)


def record(traceparent: str | None) -> Record:
    headers = [] if traceparent is None else [("traceparent", traceparent.encode())]
    return Record("faceguard.requests", 2, 41, b"r-1", b"{}", 0, headers)


def exporting() -> tuple[OpenTelemetrySpans, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetrySpans(provider), exporter


def test_a_record_span_continues_the_requests_trace_with_a_child_per_stage() -> None:
    spans, exporter = exporting()
    span = spans.begin(record(f"00-{TRACE_ID}-{PARENT_SPAN}-01"))
    span.end(SpanEnd(outcome=OutcomeKind.MASKED, failed=False, faces=2, timings=TIMINGS))
    finished = {s.name: s for s in exporter.get_finished_spans()}
    process = finished["faceguard.process faceguard.requests"]
    assert f"{process.context.trace_id:032x}" == TRACE_ID
    assert process.parent is not None
    assert f"{process.parent.span_id:016x}" == PARENT_SPAN
    # The outputs carry this span's id, so the backend links them to it.
    assert span.context.traceparent == f"00-{TRACE_ID}-{process.context.span_id:016x}-01"
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == "faceguard.requests"
    assert process.attributes["messaging.kafka.offset"] == 41
    assert process.attributes["faceguard.faces"] == 2
    children = [finished[f"faceguard.{stage}"] for stage in STAGES]
    assert all(c.parent is not None and c.parent.span_id == process.context.span_id for c in children)
    durations_ms = [((c.end_time or 0) - (c.start_time or 0)) / 1e6 for c in children]
    assert durations_ms == [3.0, 2.0, 40.0, 1.5, 4.0]
    assert all(a.end_time == b.start_time for a, b in itertools.pairwise(children))


def test_a_failed_record_is_an_error_span_and_a_request_without_context_starts_a_trace() -> None:
    spans, exporter = exporting()
    span = spans.begin(record(None))
    span.end(SpanEnd(outcome=OutcomeKind.DEAD_LETTERED, failed=True, error_class=ErrorClass.NOT_AN_IMAGE))
    [process] = exporter.get_finished_spans()
    assert process.parent is None
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes is not None
    assert process.attributes["error.type"] == "not_an_image"
    assert span.context.trace_id == f"{process.context.trace_id:032x}"


def test_without_opentelemetry_the_context_still_propagates() -> None:
    span = ContextOnly().begin(record(f"00-{TRACE_ID}-{PARENT_SPAN}-01"))
    span.end(SpanEnd(outcome=OutcomeKind.MASKED, failed=False))
    assert span.context.trace_id == TRACE_ID
    assert span.context.span_id != PARENT_SPAN
