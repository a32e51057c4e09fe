"""Processing guarantees: how finished records become published outputs and committed offsets.

Both strategies publish a record's outputs and commit its offset only over a
contiguous run of finished records per partition (`OffsetTracker`), so a crash
at any moment loses nothing:

- `ExactlyOnce`: outputs wait in memory until their record's offset is
  committable; then the outputs of the run and the offsets go out in one
  transaction. A crash aborts the open transaction: readers on read_committed
  see each request's outputs once.
- `AtLeastOnce`: outputs are produced as soon as a record finishes, and the
  offset is committed after the broker acknowledged them all. A crash may
  publish a record's outputs twice, under the same request id.

`commit` is called often by the consumer thread. While the worker has an idle
processing thread, it commits what is committable once `min_commit_gap_s` has
passed since the last commit: a record finishing after a quiet spell goes at
once, and records finishing close together share a transaction instead of each
paying for its own (a transaction costs the broker several ms of CPU, on the
same cores in a small deployment). While every thread is busy, it batches: it
commits when `batch_size` records are ready or `commit_interval_s` has passed,
so a saturated worker spends fewer round trips (and the broker fewer transaction
markers) per record. Revocation and shutdown force a commit.

Every commit also writes a crash mark in the offsets' metadata, charging the
record at the committed position with an attempt (`consumer.engine.attempts`);
a clean revocation writes the marks back without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumer.engine.attempts import Attempts
from consumer.engine.offsets import Committable, OffsetTracker
from consumer.errors import GroupChanged, PublishError
from consumer.kafka.consumer import RequestConsumer
from consumer.kafka.producers import OutputProducer, TransactionalProducer
from consumer.observability.metrics import Metrics
from consumer.processing.outcome import Outcome
from consumer.records import PartitionKey

log = logging.getLogger(__name__)
# After the group refused a commit (its generation moved on), commits wait this long for the rebalance to reach
# the consumer, instead of aborting a transaction on every loop turn meanwhile.
REGROUP_WAIT_S = 0.5
# How often an idle worker serves delivery reports while outputs await their acknowledgement (at least once).
ACKNOWLEDGEMENT_WAIT_S = 0.005


@dataclass(frozen=True)
class CommitPacing:
    """When finished records are committed (see the module docstring)."""

    batch_size: int  # with every thread busy: commit once this many are ready...
    commit_interval_s: float  # ...or this long after the last commit
    min_commit_gap_s: float  # with a thread idle: commit once this long has passed since the last commit
    delivery_timeout_s: float  # how long the broker may take to acknowledge outputs


class Delivery:
    """Shared commit pacing; subclasses decide what a commit publishes. Owns the offset tracker."""

    def __init__(self, pacing: CommitPacing, consumer: RequestConsumer, metrics: Metrics, attempts: Attempts) -> None:
        self._pacing = pacing
        self.tracker: OffsetTracker[Outcome] = OffsetTracker()
        self._attempts = attempts
        # Partitions whose last commit of ours charges the record at their position with an attempt.
        self._charged: dict[PartitionKey, int] = {}
        # Whether commits charge the record at each committed position with an attempt. The worker turns it
        # off while it goes carefully: then only the one record in flight is charged, by `mark`.
        self.charging = True
        self._consumer = consumer
        self._metrics = metrics
        self._last_commit = time.monotonic()
        self._regroup_until = 0.0  # after a commit refused by a group change, wait for the rebalance till then
        # Once the worker is asked to stop, the time its drain ends (monotonic): no commit may outlast it.
        self.stop_by: Callable[[], float | None] = lambda: None

    def complete(self, outcome: Outcome) -> None:
        """A record finished processing. Raises PublishError when an earlier output was rejected."""
        raise NotImplementedError

    def commit(self, force: bool = False, saturated: bool = False) -> None:
        """Commit what is committable: at once unless `saturated` (every processing thread busy), else when
        due; always when `force`. Raises PublishError when the broker refuses."""
        if not (force or self._due(saturated)):
            return
        runs = self.tracker.take_committable()
        if runs:
            started = self._last_commit = time.monotonic()
            offsets = {run.partition: run.next_offset for run in runs}
            try:
                self._commit_runs(runs, self._marks(offsets, in_flight=self.charging))
            except GroupChanged as exc:
                # Nothing of the batch was written: keep it. The consumer's next poll serves the rebalance
                # (lost or revoked partitions are dropped from the tracker, restored runs included); what is
                # still ours is committed on a later turn, under the new generation.
                self.tracker.restore(runs)
                self._regroup_until = time.monotonic() + REGROUP_WAIT_S
                log.warning(
                    "commit refused, the group changed (%s); %d records kept for the next commit",
                    exc,
                    sum(len(run.finished) for run in runs),
                )
                return
            self._charged_now(offsets, self.charging)
            outcomes = [outcome for run in runs for outcome in run.payloads]
            self._metrics.committed(outcomes, time.monotonic() - started)

    def _marks(self, offsets: dict[PartitionKey, int], in_flight: bool) -> dict[PartitionKey, str]:
        return {p: self._attempts.mark(p, offset, in_flight) for p, offset in offsets.items()}

    def _charged_now(self, offsets: dict[PartitionKey, int], charged: bool) -> None:
        for partition, offset in offsets.items():
            if charged:
                self._charged[partition] = offset
            else:
                self._charged.pop(partition, None)

    def charged(self, partition: PartitionKey) -> int | None:
        """The offset our last commit of `partition` charged with an attempt (None: it charged none)."""
        return self._charged.get(partition)

    def mark(self, offsets: dict[PartitionKey, int]) -> bool:
        """Commit these positions (each a partition's first unfinished record) with a crash mark charging the
        record there with the attempt about to start. False when the group changed meanwhile: the rebalance
        comes with the next poll. Raises PublishError when the broker refuses otherwise."""
        try:
            self._commit_marks(offsets, self._marks(offsets, in_flight=True))
        except GroupChanged as exc:
            self._regroup_until = time.monotonic() + REGROUP_WAIT_S
            log.warning("crash marks refused, the group changed (%s)", exc)
            return False
        self._charged_now(offsets, True)
        return True

    def release(self, partitions: set[PartitionKey]) -> None:
        """Write the marks of `partitions` back without an unfinished attempt (the worker leaves them cleanly).
        Best effort: a mark left in place only makes the next owner careful."""
        offsets = {p: self._charged.pop(p) for p in partitions & self._charged.keys()}
        if not offsets:
            return
        try:
            self._commit_marks(offsets, self._marks(offsets, in_flight=False))
        except (GroupChanged, PublishError) as exc:
            log.warning(
                "crash marks of %d partitions not written back (%s): their next owner goes carefully", len(offsets), exc
            )

    def forget(self, partitions: set[PartitionKey]) -> None:
        """Partitions lost to the group: their marks are no longer ours to write."""
        for partition in partitions:
            self._charged.pop(partition, None)

    def _due(self, saturated: bool) -> bool:
        if time.monotonic() < self._regroup_until:
            return False
        if not saturated:
            return self.due_in() == 0
        ready = self.tracker.committable_count
        elapsed = time.monotonic() - self._last_commit
        return ready >= self._pacing.batch_size or (ready > 0 and elapsed >= self._pacing.commit_interval_s)

    def due_in(self) -> float | None:
        """Seconds until what is committable is due with a thread idle (0: now); None when nothing is."""
        if not self.tracker.committable_count:
            return None
        return max(0.0, self._pacing.min_commit_gap_s - (time.monotonic() - self._last_commit))

    def wake_in(self) -> float | None:
        """Seconds until the worker's loop should turn again for this delivery's sake (None: no need)."""
        return self.due_in()

    def drain(self) -> None:
        """Wait for outstanding acknowledgements, then commit everything committable."""
        self.commit(force=True)

    def _commit_runs(self, runs: list[Committable[Outcome]], metadata: dict[PartitionKey, str]) -> None:
        raise NotImplementedError

    def _commit_marks(self, offsets: dict[PartitionKey, int], metadata: dict[PartitionKey, str]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ExactlyOnce(Delivery):
    def __init__(
        self,
        pacing: CommitPacing,
        consumer: RequestConsumer,
        metrics: Metrics,
        attempts: Attempts,
        producer: TransactionalProducer,
    ) -> None:
        super().__init__(pacing, consumer, metrics, attempts)
        self._producer = producer

    def complete(self, outcome: Outcome) -> None:
        self.tracker.finish(outcome.record.partition_key, outcome.record.offset, outcome)

    def _commit_runs(self, runs: list[Committable[Outcome]], metadata: dict[PartitionKey, str]) -> None:
        outputs = [record for run in runs for outcome in run.payloads for record in outcome.outputs]
        offsets = {run.partition: run.next_offset for run in runs}
        self._producer.commit(outputs, offsets, self._consumer.group_metadata, self.stop_by, metadata)
        self._metrics.transactions.labels("committed").inc()

    def _commit_marks(self, offsets: dict[PartitionKey, int], metadata: dict[PartitionKey, str]) -> None:
        self._producer.commit([], offsets, self._consumer.group_metadata, self.stop_by, metadata)
        self._metrics.transactions.labels("committed").inc()

    def close(self) -> None:
        self._producer.close()


class AtLeastOnce(Delivery):
    def __init__(
        self,
        pacing: CommitPacing,
        consumer: RequestConsumer,
        metrics: Metrics,
        attempts: Attempts,
        producer: OutputProducer,
    ) -> None:
        super().__init__(pacing, consumer, metrics, attempts)
        self._producer = producer
        self._rejected: str | None = None
        self._unacknowledged = 0  # outputs sent whose delivery report has not been served yet

    def complete(self, outcome: Outcome) -> None:
        record = outcome.record
        if not self.tracker.tracks(record.partition_key, record.offset):
            return  # its partition was revoked: the new owner processes it again
        if not outcome.outputs:
            self.tracker.finish(record.partition_key, record.offset, outcome)
            return
        unacknowledged = [len(outcome.outputs)]
        self._unacknowledged += len(outcome.outputs)

        def acknowledged(error: str | None) -> None:
            self._unacknowledged -= 1
            if error is not None:
                self._rejected = self._rejected or error
                return
            unacknowledged[0] -= 1
            if unacknowledged[0] == 0:
                self.tracker.finish(record.partition_key, record.offset, outcome)

        for output in outcome.outputs:
            self._producer.send(output, acknowledged)

    def commit(self, force: bool = False, saturated: bool = False) -> None:
        self._producer.poll()
        if self._rejected is not None:
            raise PublishError(f"an output was not acknowledged: {self._rejected}")
        super().commit(force, saturated)

    def wake_in(self) -> float | None:
        """Soon while outputs await their acknowledgement: delivery reports are served by `commit`, and the
        worker would otherwise serve them only when its poll for new requests ends (`poll_timeout_s`), so
        that the record would be counted finished, its latency observed and its offset committed that
        much later."""
        due = super().wake_in()
        if not self._unacknowledged:
            return due
        return ACKNOWLEDGEMENT_WAIT_S if due is None else min(due, ACKNOWLEDGEMENT_WAIT_S)

    def drain(self) -> None:
        timeout_s = self._pacing.delivery_timeout_s
        if (stop_by := self.stop_by()) is not None:
            timeout_s = max(0.0, min(timeout_s, stop_by - time.monotonic()))
        undelivered = self._producer.flush(timeout_s)
        if undelivered:
            raise PublishError(f"{undelivered} outputs unacknowledged after {timeout_s:.1f}s")
        self.commit(force=True)

    def _commit_runs(self, runs: list[Committable[Outcome]], metadata: dict[PartitionKey, str]) -> None:
        self._consumer.commit({run.partition: run.next_offset for run in runs}, metadata)

    def _commit_marks(self, offsets: dict[PartitionKey, int], metadata: dict[PartitionKey, str]) -> None:
        self._consumer.commit(offsets, metadata)

    def close(self) -> None:
        self._producer.close(self._pacing.delivery_timeout_s)
