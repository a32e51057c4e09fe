"""One record in, its outcome out: the per-record work of a processing thread.

`RecordProcessor` parses the request, fetches, anonymizes, and turns the result,
or the failure, into the records to publish. It owns one detector (through its
`Anonymizer`) and one fetcher, so it belongs to exactly one thread. Failures of
the record (`RecordFailure`) become retry or dead-letter outputs; anything else
raised here is a bug and propagates.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from consumer.errors import ProcessingBug, RecordFailure
from consumer.processing.claim_check import ClaimCheck
from consumer.processing.envelope import enveloped, request_id_of, source_of
from consumer.processing.outcome import Outcome, OutcomeKind
from consumer.processing.outputs import (
    FailedRecord,
    OutputOptions,
    dead_letter_record,
    retry_record,
    success_records,
)
from consumer.processing.pipeline import Anonymizer, Stopwatch, metadata_event
from consumer.processing.request import parse_request
from consumer.processing.retry import history_of, route_failure
from consumer.processing.spans import ContextOnly, SpanEnd, Spans
from consumer.processing.trace import TraceContext, traced
from consumer.records import Record
from consumer.sources.fetch import Fetcher
from schemas import SourceRecord

log = logging.getLogger(__name__)


class RecordProcessor:
    """Processes records one at a time on one thread."""

    def __init__(
        self,
        outputs: OutputOptions,
        anonymizer: Anonymizer,
        fetcher: Fetcher,
        claim_check: ClaimCheck,
        spans: Spans | None = None,
    ) -> None:
        self._outputs = outputs
        self._anonymizer = anonymizer
        self._fetcher = fetcher
        self._claim_check = claim_check
        self._spans = spans or ContextOnly()

    def process(self, record: Record) -> Outcome:
        """The outcome of one record, its outputs carrying the record's span. Raises only on a bug."""
        return self._traced(record, lambda trace: self._outcome(record, trace))

    def dead_letter_bug(self, record: Record, error: Exception, attempts: int) -> Outcome:
        """The dead letter of a record whose processing raised `error` (a bug) on each of `attempts`."""
        failure = ProcessingBug(f"{type(error).__name__} on each of {attempts} attempts: {error}")
        return self._traced(record, lambda trace: self._failed(record, failure, None, trace))

    def _traced(self, record: Record, outcome_of: Callable[[TraceContext], Outcome]) -> Outcome:
        span = self._spans.begin(record)
        outcome = outcome_of(span.context)
        result = outcome.result
        span.end(
            SpanEnd(
                outcome=outcome.kind,
                failed=outcome.failed,
                error_class=outcome.error_class,
                faces=None if result is None else len(result.faces),
                timings=None if result is None else result.timings,
            )
        )
        source, topics = source_of(self._outputs.group_id), self._outputs.topics
        events = enveloped(outcome.outputs, record, request_id_of(outcome.outputs), source, topics)
        return dataclasses.replace(outcome, outputs=traced(events, span.context))

    def _outcome(self, record: Record, trace: TraceContext) -> Outcome:
        request = None
        try:
            request = parse_request(record, self._outputs.limits)
            clock = Stopwatch()
            data = self._fetcher.fetch(request.image_ref)
            result = self._anonymizer.anonymize(data, request.mask, fetch_ms=clock.lap())
            stored = self._claim_check.place(request.request_id, result)
            source = SourceRecord(topic=record.topic, partition=record.partition, offset=record.offset)
            event = metadata_event(request, result, self._anonymizer.detector.info, self._outputs.worker_id, source)
            event = event.model_copy(update={"output": stored})
            outputs = success_records(self._outputs, result, event)
        except RecordFailure as failure:
            return self._failed(record, failure, None if request is None else request.request_id, trace)
        kind = OutcomeKind.MASKED if event.total_count else OutcomeKind.NO_FACES
        fields = {"outcome": kind.value, "faces": event.total_count, "ms": round(event.processing_time_ms, 1)}
        log.info(
            "%s request=%s topic=%s partition=%d offset=%d faces=%d ms=%.1f stored=%s",
            kind.value,
            request.request_id,
            record.topic,
            record.partition,
            record.offset,
            event.total_count,
            event.processing_time_ms,
            stored is not None,
            extra=log_fields(record, request.request_id, trace) | fields | {"stored": stored is not None},
        )
        return Outcome(record, kind, outputs, None, result, len(data))

    def _failed(self, record: Record, failure: RecordFailure, request_id: str | None, trace: TraceContext) -> Outcome:
        topics = self._outputs.topics
        failed = FailedRecord(record, failure, history_of(record, topics.retries), request_id)
        route = route_failure(failure, failed.history, topics.retries, topics.retry_delays_s)
        if route is None:
            action, kind, output = "dead-lettered", OutcomeKind.DEAD_LETTERED, dead_letter_record(self._outputs, failed)
        else:
            action, kind = f"retry tier {route.tier} in {route.delay_s:g}s", OutcomeKind.RETRIED
            output = retry_record(self._outputs, failed, route)
        fields = {
            "outcome": kind.value,
            "error_class": failure.error_class.value,
            "attempt": failed.history.attempts + 1,
        }
        log.warning(
            "%s request=%s topic=%s partition=%d offset=%d attempt=%d class=%s reason=%s",
            action,
            request_id,
            record.topic,
            record.partition,
            record.offset,
            failed.history.attempts + 1,
            failure.error_class.value,
            failure,
            extra=log_fields(record, request_id, trace) | fields,
        )
        return Outcome(record, kind, [output], failure.error_class)

    def close(self) -> None:
        self._fetcher.close()
        self._anonymizer.detector.close()


def log_fields(record: Record, request_id: str | None, trace: TraceContext) -> dict[str, object]:
    """The structured fields of a log line about `record`."""
    return {
        "request_id": request_id,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "trace_id": trace.trace_id,
    }
