"""The consumer thread: poll, schedule, dispatch to the processing pool, commit.

One thread owns the consumer, the offset tracker and the delivery strategy;
processing threads only turn records into outcomes. Each loop turn it

1. takes completed outcomes from the pool and hands them to the delivery
   strategy (which publishes and commits over contiguous runs of offsets);
2. releases retry records that have become due, and dispatches ready records
   to the pool while the circuit breaker allows;
3. pauses every assigned partition while `max_in_flight` records are
   uncommitted or the breaker is open, and each retry partition whose head is
   not yet due; resumes them otherwise;
4. polls the consumer: it keeps polling while paused, so a slow image never
   makes the group evict this worker (`max.poll.interval.ms` does not bound
   processing time).

On revocation, in-flight work of the revoked partitions finishes (up to
`drain_timeout_s`) and is committed before the partitions are released. A
record still in a processing thread when its partition is given up (lost, or
revoked past that deadline) no longer counts when it finishes, even if the
partition was assigned to this worker again meanwhile: the record is fetched
and processed again (`consumer.engine.inflight`). On a
stop request (SIGTERM), no new record is dispatched; in-flight work finishes
within `drain_timeout_s`, is committed, and the worker leaves the group.
A record whose processing raised (a bug) is dispatched again, ahead of the
others; the pool dead-letters it after `MAX_BUG_ATTEMPTS`. Each crash is counted
(`faceguard_processing_bugs_total`). Only a bug in dead-lettering itself stops
the worker, after committing what finished.

A worker that died outright leaves crash marks in its commits' metadata
(`consumer.engine.attempts`). Before dispatching the first record of a partition,
the worker reads the partition's committed position: if a worker died there, it
processes the marked record carefully (alone, charged by a commit of its own)
before going on; otherwise it makes sure its own
last commit of the partition charges the record there, so that its own death
leaves a trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from consumer.engine.attempts import CareWindows
from consumer.engine.breaker import BreakerState, CircuitBreaker
from consumer.engine.delivery import Delivery
from consumer.engine.inflight import InFlight
from consumer.engine.pool import Completion, Crash, ProcessingPool
from consumer.engine.schedule import DelayedRecords
from consumer.errors import ProcessingBug, PublishError
from consumer.kafka.consumer import RequestConsumer
from consumer.kafka.watermarks import WatermarkReader
from consumer.observability.health import Health
from consumer.observability.metrics import Metrics
from consumer.processing.retry import not_before
from consumer.records import PartitionKey, Record
from consumer.topics import Topics

log = logging.getLogger(__name__)

# While records are in flight, the loop waits this long at most for the next completion, then polls
# without waiting: completions are handled as they come, and the thread does not wake needlessly.
# With every thread busy a new request would only queue, so the wait is long; with a thread to spare,
# a request arriving meanwhile waits for the wait to end, so it is short.
BUSY_WAIT_S = 0.05
SPARE_THREAD_WAIT_S = 0.005
QUEUED_PER_THREAD = 4  # records handed to the pool per processing thread, at most
LAG_REFRESH_S = 5.0  # how often lag is computed; the broker's offsets are read on their own thread as often
# Records from a crash mark processed one at a time. One: the marked record alone, then normal work; a later
# culprit is charged when it is the first unfinished record at a death. Going carefully over everything the
# dead worker might have had in flight (up to max_in_flight) made a takeover after an eviction crawl.
CAREFUL_RECORDS = 1
COMMITTED_READ_TIMEOUT_S = 5.0  # the longest wait for a partition's committed position and crash mark


class StopRequest(threading.Event):
    """A stop request (SIGTERM) that remembers when it came, so that work already under way, a commit
    waiting on a broker that is gone, is held to the same drain deadline."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None  # monotonic

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        super().set()


@dataclass(frozen=True)
class WorkerOptions:
    """What the consumer thread needs to know."""

    worker_id: str
    group_id: str
    topics: Topics
    processing_threads: int
    max_in_flight: int  # uncommitted records before every partition pauses
    poll_timeout_s: float  # longest wait for new records with nothing in flight
    drain_timeout_s: float  # time in-flight work gets on stop or revocation


@dataclass(frozen=True)
class Observers:
    """Where the consumer thread reports: metrics, the probes, and the broker's log offsets for lag."""

    metrics: Metrics
    health: Health
    watermarks: WatermarkReader


class Worker:
    """Runs the consumer thread: build it with its collaborators, then `run(stop)`.

    The delivery strategy owns the offset tracker and commits through `consumer`;
    the worker subscribes `consumer` with itself as the rebalance listener when it runs.
    """

    def __init__(
        self,
        options: WorkerOptions,
        pool: ProcessingPool,
        *,
        consumer: RequestConsumer,
        delivery: Delivery,
        breaker: CircuitBreaker,
        observers: Observers,
    ) -> None:
        self._options = options
        self._metrics, self._health, self._watermarks = observers.metrics, observers.health, observers.watermarks
        self._lag_read = 0.0
        self._pool = pool
        self.consumer = consumer
        self.delivery = delivery
        self._tracker = delivery.tracker  # the worker records what it consumed; delivery commits it
        self._breaker = breaker
        self._delayed: DelayedRecords[Record] = DelayedRecords(time.time)
        self._ready: deque[Record] = deque()
        self._in_pool = InFlight()
        self._assigned: set[PartitionKey] = set()
        self._paused: set[PartitionKey] = set()
        self._crash: Crash | None = None
        self._care = CareWindows(CAREFUL_RECORDS)
        self._stopping = False
        self._backpressure = False

    # Rebalance callbacks: they run inside consume(), on this thread.

    def on_assign(self, partitions: list[PartitionKey]) -> None:
        log.info("assigned %s", _names(partitions))
        self._assigned.update(partitions)
        self._health.assigned_partitions = len(self._assigned)

    def on_revoke(self, partitions: list[PartitionKey]) -> None:
        """Finish (or give up on) in-flight work of `partitions`, commit it, then forget them."""
        revoked = set(partitions)
        self._drop_unstarted(revoked)
        deadline = time.monotonic() + (0.0 if self._crash else self._options.drain_timeout_s)
        while self._in_pool.count(revoked) and time.monotonic() < deadline:
            self._absorb(self._pool.completions(0.05))
        if self._crash is None:
            self.delivery.drain()
            self.delivery.release(revoked)  # a bug in dead-lettering leaves its marks: the next owner counts it
        dropped = self._tracker.drop(revoked)
        self._forget(revoked)
        log.info("revoked %s (%d uncommitted records left to the next owner)", _names(partitions), dropped)

    def on_lost(self, partitions: list[PartitionKey]) -> None:
        """The group moved on without us: forget the partitions without committing."""
        lost = set(partitions)
        self._drop_unstarted(lost)
        dropped = self._tracker.drop(lost)
        self.delivery.forget(lost)
        self._forget(lost)
        log.warning("lost %s (%d uncommitted records will be processed again)", _names(partitions), dropped)

    def _drop_unstarted(self, partitions: set[PartitionKey]) -> None:
        """Forget records of `partitions` that no thread has started: ready, held for a retry, or queued."""
        self._ready = deque(r for r in self._ready if r.partition_key not in partitions)
        self._delayed.drop(partitions)
        for record in self._pool.take_back():  # keep the other partitions' records queued, in order
            if record.partition_key in partitions:
                self._in_pool.take_back(record)
            else:
                self._pool.submit(record)

    def _forget(self, partitions: set[PartitionKey]) -> None:
        if paused := self._paused & partitions:
            # librdkafka keeps a partition paused by the application across a rebalance: handed back to this
            # worker later, it would never be fetched again (a whole partition stalled after a scale-out).
            self.consumer.resume(paused)
        self._assigned -= partitions
        self._care.forget(partitions)
        self._health.assigned_partitions = len(self._assigned)
        self._paused -= partitions
        self._in_pool.forget(partitions)

    def run(self, stop: StopRequest) -> None:
        """Consume until `stop` is set and in-flight work is committed.

        Raises PublishError when the broker refuses outputs or offsets, ProcessingBug after
        committing finished work when processing hit a bug.
        """
        self.consumer.subscribe(self)
        drain_s = self._options.drain_timeout_s
        self.delivery.stop_by = lambda: None if stop.at is None else stop.at + drain_s
        drain_deadline = float("inf")
        while True:
            if stop.is_set() and not self._stopping:
                self._stopping = True
                for record in self._pool.take_back():  # not started: left uncommitted for the next owner
                    self._in_pool.take_back(record)
                drain_deadline = (stop.at or time.monotonic()) + drain_s
                log.info("stopping: finishing %d in-flight records, taking no new ones", self.in_flight)
            # While records are in flight, wait on their completions rather than on the consumer.
            self._absorb(self._pool.completions(self._completion_wait()))
            if self._crash is not None:
                self.delivery.commit(force=True)
                raise ProcessingBug(
                    f"bug while dead-lettering {self._crash.record.topic}[{self._crash.record.partition}]"
                    f"@{self._crash.record.offset}: {self._crash.error!r}"
                )
            if self._stopping:
                if self.in_flight == 0 or time.monotonic() > drain_deadline:
                    self.delivery.drain()
                    return
            else:
                self._ready.extend(self._delayed.release_due())
                self._dispatch()
            self.delivery.commit(saturated=self._saturated)
            self._apply_pauses()
            self._observe()
            for record in self.consumer.consume(self._room(), 0 if self.in_flight else self._poll_timeout()):
                self._accept(record)

    def _observe(self) -> None:
        """Report this loop turn to the probes and gauges; read lag from the broker now and then."""
        self._health.loop_turned()
        breaker_open = self._breaker.state is BreakerState.OPEN
        self._health.breaker_open = breaker_open
        self._metrics.breaker_open.set(1 if breaker_open else 0)
        self._metrics.in_flight.set(self.in_flight)
        self._metrics.paused.set(len(self._paused))
        self._health.broker_reachable = self._watermarks.reachable
        if time.monotonic() - self._lag_read < LAG_REFRESH_S:
            return
        self._watermarks.watch(self._assigned)
        logs, started_from = self._watermarks.logs, self.consumer.started_from()
        positions = self.consumer.positions(self._assigned)
        lag = {}
        for partition in self._assigned & logs.keys():
            position = positions.get(partition, -1)
            if position >= 0 or partition in started_from:  # else where it starts is not settled yet
                lag[partition] = logs[partition].lag(position, started_from.get(partition))
        self._metrics.lag_refreshed(lag, self._options.processing_threads)
        self._lag_read = time.monotonic()

    @property
    def _saturated(self) -> bool:
        """Every processing thread has a record."""
        return self.in_flight >= self._options.processing_threads

    def _completion_wait(self) -> float:
        if not self.in_flight:
            return 0.0  # nothing to wait for: the consumer's poll waits instead
        return BUSY_WAIT_S if self._saturated else SPARE_THREAD_WAIT_S

    @property
    def in_flight(self) -> int:
        """Records handed to the processing threads and not yet completed."""
        return self._in_pool.count()

    def _accept(self, record: Record) -> None:
        if record.partition_key not in self._assigned:
            return  # a straggler from a partition revoked meanwhile
        self._tracker.consumed(record.partition_key, record.offset)
        self._metrics.consumed.labels(record.topic).inc()
        if record.topic == self._options.topics.requests or self._delayed.admit(
            record.partition_key, not_before(record), record
        ):
            self._ready.append(record)

    def _dispatch(self) -> None:
        if not self._ready or not self._read_crash_marks():
            return
        self.delivery.charging = not self._care.careful
        if self._care.careful:
            self._dispatch_carefully()
            return
        # Queue enough that the threads keep working while this thread waits on a commit, and no more:
        # the breaker only stops what was not dispatched. Records no thread has started are taken back
        # on stop, revocation and when the breaker opens.
        limit = QUEUED_PER_THREAD * self._options.processing_threads
        batch: list[Record] = []
        while self._ready and self.in_flight + len(batch) < limit and self._breaker.may_dispatch():
            batch.append(self._ready.popleft())
        # Our death must leave a trace: each partition's last commit of ours charges the record at its position.
        uncharged = {r.partition_key for r in batch if self.delivery.charged(r.partition_key) is None}
        heads = {p: head for p in uncharged if (head := self._tracker.head(p)) is not None}
        if heads and not self.delivery.mark(heads):
            self._ready.extendleft(reversed(batch))  # the group changed: the rebalance comes with the next poll
            return
        for record in batch:
            self._submit(record)

    def _dispatch_carefully(self) -> None:
        """One record at a time, charged with its attempt in a commit of its own before it starts: a worker
        died on one of the records ahead, and a death now must name the one record that caused it."""
        if self.in_flight:
            return
        idle = {p for p in self._care.careful_partitions() if not self._tracker.pending([p])}
        for partition, position in self.consumer.positions(idle).items():  # past the window's last records?
            self._care.passed(partition, position)
        if not self._care.careful:
            self._dispatch()
            return
        if not self._breaker.may_dispatch():
            return
        record = self._ready[0]
        partition = record.partition_key
        if self._tracker.head(partition) != record.offset:
            self.delivery.commit(force=True)
            if self._tracker.head(partition) != record.offset:
                return  # an earlier record awaits its acknowledgement (at least once): next turn
        # Only now, the records before it committed, may care end: a death after it must not be charged to
        # the record just processed carefully (its commit could still have been on its way).
        self._care.passed(partition, record.offset)
        if not self._care.careful:
            self._dispatch()
            return
        if self.delivery.charged(partition) != record.offset and not self.delivery.mark({partition: record.offset}):
            return
        self._submit(self._ready.popleft())

    def _submit(self, record: Record) -> None:
        self._in_pool.add(record)
        self._pool.submit(record)

    def _read_crash_marks(self) -> bool:
        """Read the committed position of each partition with a ready record that was not read since it was
        assigned: a crash mark there says a worker died on the record. False when the coordinator did not
        answer (dispatch waits for the next turn)."""
        unread = self._care.unread({record.partition_key for record in self._ready})
        if not unread:
            return True
        try:
            committed = self.consumer.committed(unread, COMMITTED_READ_TIMEOUT_S)
        except PublishError as exc:
            log.warning("%s; trying again", exc)
            return False
        for partition, position in committed.items():
            self._care.read(partition, position, self._pool.attempts)
            if self._care.careful and partition in self._care.careful_partitions():
                log.warning(
                    "a worker died on %s[%d] at offset %d: going carefully, one record at a time",
                    *partition,
                    position.offset,
                )
        return True

    def _absorb(self, completions: list[Completion]) -> None:
        for completion in completions:
            key = completion.record.partition_key
            if not self._in_pool.complete(completion.record):
                log.info(
                    "%s[%d]@%d finished after its partition was given up: left to the partition's owner",
                    *key,
                    completion.record.offset,
                )
                continue
            if isinstance(completion, Crash):
                self._crashed(completion)
                continue
            self._metrics.processed(completion)
            self._care.passed(key, completion.record.offset + 1)
            was_open = self._breaker.state is BreakerState.OPEN
            self._breaker.record(completion.breaker_failure)
            self.delivery.complete(completion)
            if not was_open and self._breaker.state is BreakerState.OPEN:
                self._hold_back_queued()

    def _crashed(self, crash: Crash) -> None:
        """Try the record again, ahead of the rest (it holds its partition's commits back), unless it is
        no longer ours or dead-lettering it failed too."""
        self._metrics.processing_bugs.inc()
        if crash.final:
            self._crash = self._crash or crash
        elif crash.record.partition_key in self._assigned and not self._stopping:
            self._ready.appendleft(crash.record)

    def _hold_back_queued(self) -> None:
        """Take records no thread has started back from the pool, ahead of the other ready ones."""
        taken = self._pool.take_back()
        for record in taken:
            self._in_pool.take_back(record)
        self._ready.extendleft(reversed(taken))

    def _apply_pauses(self) -> None:
        pending = self._tracker.pending()
        if pending >= self._options.max_in_flight:
            self._backpressure = True
        elif pending <= self._options.max_in_flight // 2:  # hysteresis: each pause drops prefetched records
            self._backpressure = False
        hold_all = self._backpressure or self._stopping or self._breaker.state is BreakerState.OPEN
        wanted = set(self._assigned) if hold_all else self._delayed.waiting_partitions() & self._assigned
        if to_pause := wanted - self._paused:
            self.consumer.pause(to_pause)
        if to_resume := self._paused - wanted:
            self.consumer.resume(to_resume)
        self._paused = wanted

    def _room(self) -> int:
        return max(1, self._options.max_in_flight - self._tracker.pending())

    def _poll_timeout(self) -> float:
        """How long to wait for records when nothing is in flight."""
        if self._ready:  # records the breaker holds back: check it again soon
            return BUSY_WAIT_S
        timeout = self._options.poll_timeout_s
        if (due_in := self._delayed.next_due_in()) is not None:
            timeout = min(timeout, max(due_in, BUSY_WAIT_S))
        if (wake_in := self.delivery.wake_in()) is not None:  # the commit gap ends, or acknowledgements come
            timeout = min(timeout, wake_in)
        return timeout


def _names(partitions: list[PartitionKey]) -> str:
    """`topic[0,1,2], other[0]`: partitions grouped by topic."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    return ", ".join(f"{topic}[{','.join(map(str, parts))}]" for topic, parts in by_topic.items()) or "nothing"
