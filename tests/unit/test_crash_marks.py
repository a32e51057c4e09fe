"""Crash marks: attempts of a record counted across worker deaths through the committed offsets' metadata."""

from __future__ import annotations

from typing import cast

from consumer.config import Settings
from consumer.engine.attempts import (
    MAX_BUG_ATTEMPTS,
    Attempts,
    CareWindows,
    crash_mark,
    marked_attempts,
)
from consumer.engine.delivery import Delivery
from consumer.engine.offsets import Committable
from consumer.kafka.consumer import RequestConsumer
from consumer.observability.metrics import Metrics
from consumer.processing.outcome import Outcome, OutcomeKind
from consumer.records import Committed, PartitionKey, Record

P = ("faceguard.requests", 0)
Q = ("faceguard.requests", 1)


def test_a_mark_round_trips_and_foreign_metadata_is_not_one() -> None:
    assert marked_attempts(crash_mark(2, 41)) == (2, 41)
    assert crash_mark(0, 41) == ""
    for foreign in ["", None, "faceguard:attempts=x@1", "faceguard:attempts=1@2 ", "some app's metadata"]:
        assert marked_attempts(foreign) is None


def test_attempts_count_charge_and_exhaust() -> None:
    attempts = Attempts()
    key = (*P, 5)
    assert attempts.count(key) == 0
    assert attempts.mark(P, 5, in_flight=True) == crash_mark(1, 5)
    assert attempts.mark(P, 5, in_flight=False) == ""
    for n in range(1, MAX_BUG_ATTEMPTS):
        assert attempts.charge(key) == n
        assert not attempts.exhausted(key)
    attempts.charge(key)
    assert attempts.exhausted(key)
    attempts.forget(key)
    assert attempts.count(key) == 0


def test_a_mark_at_the_committed_position_charges_its_record_and_starts_care_up_to_the_window_or_the_end() -> None:
    attempts, care = Attempts(), CareWindows(window=10)
    assert care.unread({P, Q}) == {P, Q}
    care.read(P, Committed(100, crash_mark(2, 100), end=105), attempts)
    care.read(Q, Committed(7, "", end=50), attempts)  # a clean commit: no care
    assert care.unread({P, Q}) == set()
    assert attempts.count((*P, 100)) == 2
    assert care.careful
    assert care.careful_partitions() == {P}
    care.passed(P, 104)
    assert care.careful
    care.passed(P, 105)  # the end at the time of reading: the dead worker had read nothing beyond it
    assert not care.careful


def test_care_spans_the_window_when_the_end_is_far_or_unknown() -> None:
    attempts, care = Attempts(), CareWindows(window=10)
    care.read(P, Committed(100, crash_mark(1, 100), end=None), attempts)
    care.passed(P, 109)
    assert care.careful
    care.passed(P, 110)
    assert not care.careful


def test_a_mark_not_at_the_committed_position_is_ignored_and_forgetting_resets_reading() -> None:
    attempts, care = Attempts(), CareWindows(window=10)
    care.read(P, Committed(101, crash_mark(1, 100), end=200), attempts)
    assert not care.careful
    assert attempts.count((*P, 100)) == 0
    care.read(Q, Committed(3, crash_mark(1, 3), end=200), attempts)
    care.forget({P, Q})
    assert not care.careful
    assert care.unread({P, Q}) == {P, Q}


def test_a_mark_never_lowers_what_this_worker_counted_itself() -> None:
    attempts, care = Attempts(), CareWindows(window=10)
    attempts.charge((*P, 100), 2)
    care.read(P, Committed(100, crash_mark(1, 100), end=None), attempts)
    assert attempts.count((*P, 100)) == 2


class Recording(Delivery):
    def __init__(self) -> None:
        settings = Settings(min_commit_gap_s=0)
        self.attempts = Attempts()
        super().__init__(settings.commit_pacing, cast(RequestConsumer, None), Metrics(), self.attempts)
        self.written: list[dict[PartitionKey, str]] = []

    def complete(self, outcome: Outcome) -> None:
        self.tracker.finish(outcome.record.partition_key, outcome.record.offset, outcome)

    def _commit_runs(self, runs: list[Committable[Outcome]], metadata: dict[PartitionKey, str]) -> None:
        self.written.append(metadata)

    def _commit_marks(self, offsets: dict[PartitionKey, int], metadata: dict[PartitionKey, str]) -> None:
        self.written.append(metadata)

    def close(self) -> None:
        pass


def finish(delivery: Recording, offset: int) -> None:
    delivery.tracker.consumed(P, offset)
    delivery.complete(Outcome(Record(*P, offset, b"k", b"{}", 0), OutcomeKind.MASKED, []))


def test_each_commit_charges_the_next_record_and_a_clean_release_takes_the_charge_back() -> None:
    delivery = Recording()
    assert delivery.charged(P) is None
    finish(delivery, 0)
    delivery.commit(force=True)
    assert delivery.written[-1] == {P: crash_mark(1, 1)}
    assert delivery.charged(P) == 1
    delivery.attempts.charge((*P, 1))  # it raised once meanwhile
    delivery.release({P, Q})
    assert delivery.written[-1] == {P: crash_mark(1, 1)}  # its one failed attempt stays, the unfinished one goes
    assert delivery.charged(P) is None
    delivery.release({P})
    assert len(delivery.written) == 2  # nothing charged: nothing to write back


def test_going_carefully_commits_without_charging_and_only_marks_charge() -> None:
    delivery = Recording()
    delivery.charging = False
    finish(delivery, 0)
    delivery.commit(force=True)
    assert delivery.written[-1] == {P: ""}
    assert delivery.charged(P) is None
    assert delivery.mark({P: 1})
    assert delivery.written[-1] == {P: crash_mark(1, 1)}
    assert delivery.charged(P) == 1
    delivery.forget({P})  # lost to the group: not ours to write back
    delivery.release({P})
    assert len(delivery.written) == 2
