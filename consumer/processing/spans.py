"""A span per processed record.

Always: the W3C trace context the record's outputs carry (`consumer.processing.trace`). With OpenTelemetry
configured (`FACEGUARD_OTEL=true` and the `otel` extra installed), each record also becomes an
exported span, a child of the request's `traceparent`, with one child span per pipeline stage
(fetch, decode, detect, mask, encode). The outputs then carry that span's own id, so a tracing
backend links the request, its processing and its outputs. The exporter is OTLP over HTTP,
configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, ...).

The stages run back to back, so their child spans are laid end to end from the record's start,
each as long as the stage's measured time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from consumer.errors import SetupError
from consumer.processing.outcome import OutcomeKind
from consumer.processing.trace import TraceContext, child_of
from consumer.records import Record
from schemas import ErrorClass, StageTimings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

STAGES = ("fetch", "decode", "detect", "mask", "encode")


@dataclass(frozen=True)
class SpanEnd:
    """How a record's processing ended, for the span's attributes."""

    outcome: OutcomeKind
    failed: bool
    error_class: ErrorClass | None = None
    faces: int | None = None
    timings: StageTimings | None = None


class RecordSpan(Protocol):
    @property
    def context(self) -> TraceContext: ...

    def end(self, ending: SpanEnd) -> None: ...


class Spans(Protocol):
    def begin(self, record: Record) -> RecordSpan: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ContextSpan:
    """Trace context only: nothing is exported."""

    context: TraceContext

    def end(self, ending: SpanEnd) -> None:
        pass


class ContextOnly:
    """Propagates the W3C trace context without a tracing SDK (the default)."""

    def begin(self, record: Record) -> RecordSpan:
        return ContextSpan(child_of(record.headers))

    def close(self) -> None:
        pass


class OpenTelemetrySpan:
    def __init__(self, tracer: Tracer, span: Span, start_ns: int) -> None:
        self._tracer = tracer
        self._span = span
        self._start_ns = start_ns
        ids = span.get_span_context()
        self.context = TraceContext(f"{ids.trace_id:032x}", f"{ids.span_id:016x}", f"{int(ids.trace_flags):02x}")

    def end(self, ending: SpanEnd) -> None:
        from opentelemetry.trace import Status, StatusCode, set_span_in_context

        span = self._span
        span.set_attribute("faceguard.outcome", ending.outcome.value)
        if ending.faces is not None:
            span.set_attribute("faceguard.faces", ending.faces)
        if ending.error_class is not None:
            span.set_attribute("error.type", ending.error_class.value)
        if ending.failed:
            span.set_status(Status(StatusCode.ERROR, None if ending.error_class is None else ending.error_class.value))
        if ending.timings is not None:
            parent = set_span_in_context(span)
            at = self._start_ns
            for stage in STAGES:
                took = int(getattr(ending.timings, f"{stage}_ms") * 1_000_000)
                child = self._tracer.start_span(f"faceguard.{stage}", context=parent, start_time=at)
                child.end(end_time=at + took)
                at += took
        span.end()


class OpenTelemetrySpans:
    """Exports a span per record, and per stage, through `provider`."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("faceguard")
        self._propagator = TraceContextTextMapPropagator()

    def begin(self, record: Record) -> RecordSpan:
        from opentelemetry.trace import SpanKind

        carrier = {
            name.lower(): value.decode("ascii", "replace")
            for name, value in record.headers
            if value is not None and name.lower() in ("traceparent", "tracestate")
        }
        start = time.time_ns()
        span = self._tracer.start_span(
            f"faceguard.process {record.topic}",
            context=self._propagator.extract(carrier),
            kind=SpanKind.CONSUMER,
            start_time=start,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        )
        return OpenTelemetrySpan(self._tracer, span, start)

    def close(self) -> None:
        """Export what is still buffered."""
        self._provider.shutdown()


def open_spans(enabled: bool, worker_id: str) -> Spans:
    """OpenTelemetry spans exported over OTLP/HTTP when `enabled`, else trace context only."""
    if not enabled:
        return ContextOnly()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise SetupError("FACEGUARD_OTEL=true needs the otel extra: pip install 'faceguard[otel]'") from exc
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "faceguard"), "service.instance.id": worker_id}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return OpenTelemetrySpans(provider)
