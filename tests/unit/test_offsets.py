"""Committed positions only advance over contiguous runs of finished records; lag per partition."""

from __future__ import annotations

import pytest

from consumer.engine.offsets import OffsetTracker
from consumer.kafka.watermarks import LogOffsets

P = ("requests", 0)
Q = ("requests", 1)


def test_out_of_order_finishes_wait_for_the_earliest() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.consumed(P, offset)
    tracker.finish(P, 7, "seven")
    tracker.finish(P, 6, "six")
    assert tracker.take_committable() == []
    tracker.finish(P, 5, "five")
    (run,) = tracker.take_committable()
    assert run.partition == P
    assert run.next_offset == 8
    assert run.payloads == ["five", "six", "seven"]
    assert tracker.pending() == 0


def test_partitions_advance_independently_and_gaps_in_offsets_are_fine() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.consumed(P, 10)
    tracker.consumed(P, 12)  # 11 was a transaction marker
    tracker.consumed(Q, 3)
    tracker.finish(P, 12, "b")
    tracker.finish(Q, 3, "q")
    assert [(r.partition, r.next_offset) for r in tracker.take_committable()] == [(Q, 4)]
    tracker.finish(P, 10, "a")
    assert [(r.next_offset, r.payloads) for r in tracker.take_committable()] == [(13, ["a", "b"])]


def test_counts_and_dropping_a_revoked_partition() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in range(4):
        tracker.consumed(P, offset)
    tracker.consumed(Q, 0)
    tracker.finish(P, 1, "x")
    assert tracker.pending() == 5
    assert tracker.pending([P]) == 4
    assert tracker.committable_count == 1
    assert tracker.drop([P]) == 4
    assert tracker.pending() == 1
    assert tracker.committable_count == 0
    assert not tracker.finish(P, 0, "late")  # a straggler of the revoked partition is ignored
    assert tracker.take_committable() == []


def test_offsets_must_increase_and_a_record_finishes_once() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.consumed(P, 4)
    with pytest.raises(ValueError, match="not after"):
        tracker.consumed(P, 4)
    assert tracker.finish(P, 4, "a")
    assert not tracker.finish(P, 4, "b")
    assert tracker.take_committable()[0].payloads == ["a"]


def test_lag_counts_from_the_position_or_from_where_consumption_started() -> None:
    log = LogOffsets(low=3, high=10)
    assert log.lag(8, committed=6) == 2  # consumed up to 7: from the position, not the older commit
    assert log.lag(-1001, committed=6) == 4  # nothing consumed yet, or an empty partition: from the commit
    assert log.lag(-1001, committed=None) == 7  # no commit: from the log's start
    assert LogOffsets(low=0, high=0).lag(-1001, committed=None) == 0  # an empty partition reads 0
    assert LogOffsets(low=12, high=12).lag(-1001, committed=5) == 0  # retention deleted past the commit
    assert LogOffsets(low=12, high=20).lag(4, committed=None) == 8  # ... and past the position


def test_runs_whose_commit_the_group_refused_are_put_back_ahead_of_later_records() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (5, 6, 9):
        tracker.consumed(P, offset)
    tracker.consumed(Q, 1)
    tracker.finish(P, 5, "five")
    tracker.finish(P, 6)  # finished without a payload (nothing to publish)
    tracker.finish(Q, 1, "one")
    runs = tracker.take_committable()
    tracker.drop([Q])  # the rebalance took Q away meanwhile: its run is not restored
    tracker.restore(runs)
    assert (tracker.pending(), tracker.committable_count) == (3, 2)
    tracker.finish(P, 9, "nine")
    (run,) = tracker.take_committable()
    assert (run.partition, run.next_offset, run.finished) == (P, 10, [(5, "five"), (6, None), (9, "nine")])
    assert tracker.pending() == 0
