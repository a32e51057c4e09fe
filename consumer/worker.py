"""The worker loop: consume a batch of requests, process each, publish, then commit.

For every request record the worker publishes either a masked image and a
metadata event, or one dead-letter record. Offsets are committed only for the
records whose outputs the broker acknowledged, so a restart never skips an
unprocessed request and never reprocesses a committed one. A stop request
(SIGTERM, Ctrl-C) is honoured between records: the current record finishes, the
rest of the batch is left for the next run, and what is done is committed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from consumer.config import Settings
from consumer.errors import InvalidRequest, PublishError, RecordFailure
from consumer.fetch import Fetcher
from consumer.kafka_io import OutgoingRecord, OutputProducer, Record, RequestConsumer
from consumer.outputs import dead_letter_record, success_records
from consumer.pipeline import Anonymizer, Stopwatch, metadata_event
from schemas import ImageRequest, SourceRecord

log = logging.getLogger(__name__)


@dataclass
class BatchDelivery:
    """Delivery reports for one batch: which records had an output rejected, and why."""

    failures: dict[int, str] = field(default_factory=dict)

    def reporter(self, index: int) -> Callable[[str | None], None]:
        def on_delivery(error: str | None) -> None:
            if error is not None:
                self.failures.setdefault(index, error)

        return on_delivery


class Worker:
    """Processes request records into outputs; one per process, on the thread that polls."""

    def __init__(
        self,
        settings: Settings,
        anonymizer: Anonymizer,
        fetcher: Fetcher,
        consumer: RequestConsumer,
        producer: OutputProducer,
    ) -> None:
        self._settings = settings
        self._anonymizer = anonymizer
        self._fetcher = fetcher
        self._consumer = consumer
        self._producer = producer

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set. Raises PublishError, or any bug, after committing finished work."""
        log.info(
            "worker %s consuming %s as group %s",
            self._settings.worker_id,
            self._settings.topic_requests,
            self._settings.group_id,
        )
        while not stop.is_set():
            batch = self._consumer.poll_batch(self._settings.batch_size, self._settings.poll_timeout_s)
            if batch:
                self.process_batch(batch, stop)

    def process_batch(self, batch: list[Record], stop: threading.Event) -> None:
        """Process records in order until done or stopped; commit the acknowledged prefix."""
        delivery = BatchDelivery()
        finished: list[Record] = []
        try:
            for index, record in enumerate(batch):
                if stop.is_set():
                    log.info("stop requested: leaving %d records of the batch for later", len(batch) - index)
                    break
                for output in self.outputs_for(record):
                    self._producer.send(output, delivery.reporter(index))
                finished.append(record)
        finally:
            undelivered = self._producer.flush(self._settings.delivery_timeout_s)
            if undelivered:  # which ones is unknown: commit none of the batch
                delivery.failures[0] = (
                    f"{undelivered} outputs unacknowledged after {self._settings.delivery_timeout_s}s"
                )
            first_failed = min(delivery.failures, default=len(finished))
            self._consumer.commit(finished[:first_failed])
        if delivery.failures:
            raise PublishError(f"outputs were not acknowledged: {delivery.failures[first_failed]}")

    def outputs_for(self, record: Record) -> list[OutgoingRecord]:
        """The records to publish for one request record; failures become a dead letter."""
        request_id = None
        try:
            request = parse_request(record)
            request_id = request.request_id
            clock = Stopwatch()
            data = self._fetcher.fetch(request.image_ref)
            result = self._anonymizer.anonymize(data, request.mask, fetch_ms=clock.lap())
        except RecordFailure as failure:
            log.warning(
                "dead-lettered request=%s topic=%s partition=%d offset=%d class=%s reason=%s",
                request_id,
                record.topic,
                record.partition,
                record.offset,
                failure.error_class.value,
                failure,
            )
            return [dead_letter_record(self._settings, record, failure, request_id)]
        source = SourceRecord(topic=record.topic, partition=record.partition, offset=record.offset)
        event = metadata_event(request, result, self._anonymizer.detector.info, self._settings.worker_id, source)
        log.info(
            "masked request=%s topic=%s partition=%d offset=%d faces=%d ms=%.1f",
            request.request_id,
            record.topic,
            record.partition,
            record.offset,
            event.total_count,
            event.processing_time_ms,
        )
        return success_records(self._settings, result, event)


def parse_request(record: Record) -> ImageRequest:
    """The request in `record`'s value. Raises InvalidRequest with a readable reason."""
    if not record.value:
        raise InvalidRequest("the record has no value; expected an ImageRequest JSON object")
    try:
        payload = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"the value is not JSON: {exc}") from exc
    try:
        return ImageRequest.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"the request breaks the ImageRequest contract: {problems}") from exc
