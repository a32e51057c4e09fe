"""The processing threads: a bounded pool, one `RecordProcessor` (and so one detector) per thread.

LiteRT and OpenCV release the GIL while they work, so threads scale about as
well as processes would, without copying every image between processes
(docs/benchmarks.md, "Why the code is as it is").
The consumer thread submits records and collects completions; a processing
thread never touches Kafka.

A record whose processing raises (a bug of ours, not a `RecordFailure`) comes back
as a `Crash`, and the consumer thread hands it in again; on its `MAX_BUG_ATTEMPTS`th
crash its processor dead-letters it as `processing_bug` instead, so one bad record
never stops its partition or the worker. A record charged that many attempts by
crash marks (it killed workers before: `consumer.engine.attempts`) is dead-lettered
without being processed again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumer.engine.attempts import MAX_BUG_ATTEMPTS, Attempts, key_of
from consumer.errors import FaceguardError, SetupError, WorkerDied
from consumer.observability.health import Health
from consumer.processing.outcome import Outcome
from consumer.processing.processor import RecordProcessor
from consumer.records import Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Crash:
    """A bug raised while processing `record`, on its `attempts`th try. `final`: dead-lettering it raised
    too, so the worker must stop loudly."""

    record: Record
    error: BaseException
    attempts: int
    final: bool = False


Completion = Outcome | Crash


class ProcessingPool:
    """`threads` processing threads fed from one queue; completions come back on another."""

    def __init__(
        self, make_processor: Callable[[], RecordProcessor], threads: int, health: Health, attempts: Attempts
    ) -> None:
        self._make_processor = make_processor
        self._health = health
        self._tasks: queue.Queue[Record | None] = queue.Queue()
        self._done: queue.Queue[Completion] = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"process-{i}", daemon=True) for i in range(threads)]
        self._ready = threading.Barrier(threads + 1)
        self._setup_errors: list[BaseException] = []
        self.attempts = attempts

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the threads and wait until each has built its processor. Raises SetupError if one could not."""
        for thread in self._threads:
            thread.start()
        self._ready.wait(timeout_s)
        if self._setup_errors:
            self.close(0.0)
            error = self._setup_errors[0]
            raise error if isinstance(error, FaceguardError) else SetupError(f"processing thread failed: {error}")

    def submit(self, record: Record) -> None:
        self._tasks.put(record)

    def take_back(self) -> list[Record]:
        """Remove and return, in submission order, the records no thread has started yet."""
        records: list[Record] = []
        while True:
            try:
                record = self._tasks.get_nowait()
            except queue.Empty:
                return records
            if record is None:  # closing: leave the stop signal in place
                self._tasks.put(None)
                return records
            records.append(record)

    def completions(self, timeout_s: float) -> list[Completion]:
        """Completed records: waits up to `timeout_s` for the first, then takes what else is there."""
        try:
            done = [self._done.get(timeout=timeout_s) if timeout_s > 0 else self._done.get_nowait()]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                return done

    def close(self, timeout_s: float) -> None:
        """Ask the threads to stop after their current record and wait up to `timeout_s` for them."""
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _complete(self, processor: RecordProcessor, record: Record) -> Completion:
        """The record's outcome; a Crash when processing raised, or its dead letter on the last attempt."""
        key = key_of(record)
        if self.attempts.exhausted(key):  # crash marks say it ended the worker on each attempt
            return self._dead_letter(processor, record, WorkerDied(), self.attempts.count(key))
        try:
            outcome = processor.process(record)
        except Exception as exc:
            attempts = self.attempts.charge(key)
            log.exception(
                "bug while processing %s[%d]@%d (attempt %d of %d)",
                record.topic,
                record.partition,
                record.offset,
                attempts,
                MAX_BUG_ATTEMPTS,
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
            )
            if attempts < MAX_BUG_ATTEMPTS:
                return Crash(record, exc, attempts)
            return self._dead_letter(processor, record, exc, attempts)
        self.attempts.forget(key)
        return outcome

    def _dead_letter(self, processor: RecordProcessor, record: Record, error: Exception, attempts: int) -> Completion:
        log.error(
            "dead-lettering %s[%d]@%d as processing_bug after %d attempts (%s)",
            record.topic,
            record.partition,
            record.offset,
            attempts,
            type(error).__name__,
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )
        try:
            outcome = processor.dead_letter_bug(record, error, attempts)
        except Exception as final:
            log.exception("bug while dead-lettering %s[%d]@%d", record.topic, record.partition, record.offset)
            return Crash(record, final, attempts, final=True)
        self.attempts.forget(key_of(record))
        return outcome

    def _run(self) -> None:
        try:
            processor = self._make_processor()
        except BaseException as exc:
            self._setup_errors.append(exc)
            self._ready.wait()
            return
        self._ready.wait()
        name = threading.current_thread().name
        try:
            while (record := self._tasks.get()) is not None:
                self._health.record_started(name)
                try:
                    self._done.put(self._complete(processor, record))
                finally:
                    self._health.record_done(name)
        finally:
            processor.close()
