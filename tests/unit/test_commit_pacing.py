"""When a delivery strategy commits: soon while a processing thread is idle, in batches while all are busy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import pytest

from consumer.config import Settings
from consumer.engine.attempts import Attempts
from consumer.engine.delivery import ACKNOWLEDGEMENT_WAIT_S, AtLeastOnce, Delivery
from consumer.engine.offsets import Committable
from consumer.kafka.consumer import RequestConsumer
from consumer.kafka.producers import OutputProducer
from consumer.observability.metrics import Metrics
from consumer.processing.outcome import Outcome, OutcomeKind
from consumer.records import OutgoingRecord, PartitionKey, Record

PARTITION = ("faceguard.requests", 0)


class RecordingDelivery(Delivery):
    """The shared pacing, with commits written down instead of sent (no broker: pure logic)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.commit_pacing, cast(RequestConsumer, None), Metrics(), Attempts())
        self.commits: list[int] = []
        self.metadata: list[dict[PartitionKey, str]] = []

    def complete(self, outcome: Outcome) -> None:
        self.tracker.finish(outcome.record.partition_key, outcome.record.offset, outcome)

    def _commit_runs(self, runs: list[Committable[Outcome]], metadata: dict[PartitionKey, str]) -> None:
        self.commits.append(sum(len(run.payloads) for run in runs))
        self.metadata.append(metadata)

    def _commit_marks(self, offsets: dict[PartitionKey, int], metadata: dict[PartitionKey, str]) -> None:
        self.metadata.append(metadata)

    def close(self) -> None:
        pass


@pytest.fixture
def delivery() -> RecordingDelivery:
    settings = Settings(batch_size=3, commit_interval_s=3600, min_commit_gap_s=0)
    return RecordingDelivery(settings)


def finish(delivery: RecordingDelivery, offset: int) -> None:
    record = Record(*PARTITION, offset, b"k", b"{}", 0)
    delivery.tracker.consumed(PARTITION, offset)
    delivery.complete(Outcome(record, OutcomeKind.NO_FACES, []))


def test_with_a_thread_to_spare_each_finished_record_is_committed_at_once(delivery: RecordingDelivery) -> None:
    for offset in range(3):
        finish(delivery, offset)
        delivery.commit(saturated=False)
    assert delivery.commits == [1, 1, 1]


def test_with_a_thread_to_spare_records_finishing_close_together_share_a_commit() -> None:
    gap = 0.2
    settings = Settings(batch_size=100, commit_interval_s=3600, min_commit_gap_s=gap)
    delivery = RecordingDelivery(settings)
    assert delivery.due_in() is None  # nothing to commit
    time.sleep(gap)  # a quiet spell: the first record goes at once
    finish(delivery, 0)
    assert delivery.due_in() == 0
    delivery.commit(saturated=False)
    assert delivery.commits == [1]
    for offset in (1, 2):
        finish(delivery, offset)
        delivery.commit(saturated=False)
    assert delivery.commits == [1]  # within the gap: they wait, and the worker polls again when they are due
    due_in = delivery.due_in()
    assert due_in is not None
    assert 0 < due_in <= gap
    time.sleep(due_in + 0.01)
    delivery.commit(saturated=False)
    assert delivery.commits == [1, 2]


def test_with_every_thread_busy_records_wait_for_a_full_batch(delivery: RecordingDelivery) -> None:
    for offset in range(5):
        finish(delivery, offset)
        delivery.commit(saturated=True)
    assert delivery.commits == [3]
    delivery.commit(saturated=False)  # the worker has room again: the rest goes now
    assert delivery.commits == [3, 2]


def test_with_every_thread_busy_a_record_waits_no_longer_than_the_interval() -> None:
    delivery = RecordingDelivery(Settings(batch_size=100, commit_interval_s=0.05))
    finish(delivery, 0)
    time.sleep(0.06)
    delivery.commit(saturated=True)
    assert delivery.commits == [1]


def test_nothing_committable_commits_nothing_and_force_takes_what_there_is(delivery: RecordingDelivery) -> None:
    delivery.commit(saturated=False)
    delivery.commit(force=True)
    assert delivery.commits == []
    finish(delivery, 0)
    delivery.commit(saturated=True)
    delivery.commit(force=True)
    assert delivery.commits == [1]


class HeldAcknowledgements:
    """An output producer whose acknowledgements come when the test serves them (no broker: pure logic)."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[str | None], None]] = []

    def send(self, record: OutgoingRecord, on_delivery: Callable[[str | None], None]) -> None:
        self.waiting.append(on_delivery)

    def serve(self) -> None:
        for on_delivery in self.waiting:
            on_delivery(None)
        self.waiting.clear()


def test_at_least_once_an_idle_worker_turns_soon_while_outputs_await_their_acknowledgement() -> None:
    producer = HeldAcknowledgements()
    settings = Settings(min_commit_gap_s=0)
    delivery = AtLeastOnce(
        settings.commit_pacing, cast(RequestConsumer, None), Metrics(), Attempts(), cast(OutputProducer, producer)
    )
    tracker = delivery.tracker
    assert delivery.wake_in() is None  # nothing sent, nothing to commit: the poll for requests may wait
    tracker.consumed(PARTITION, 0)
    outputs = [OutgoingRecord("faceguard.metadata", b"k", b"{}", []), OutgoingRecord("faceguard.masked", b"k", b"", [])]
    delivery.complete(Outcome(Record(*PARTITION, 0, b"k", b"{}", 0), OutcomeKind.MASKED, outputs))
    assert delivery.due_in() is None  # not finished until both outputs are acknowledged
    assert delivery.wake_in() == ACKNOWLEDGEMENT_WAIT_S
    producer.serve()
    assert delivery.wake_in() == 0  # acknowledged: its offset is due
