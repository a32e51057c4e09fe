"""Records in the processing pool, and completions that arrive after their partition was given up."""

from __future__ import annotations

from consumer.engine.inflight import InFlight
from consumer.records import Record


def record(partition: int, offset: int) -> Record:
    return Record("requests", partition, offset, None, b"{}", 0)


def test_records_are_counted_per_partition_until_completed_or_taken_back() -> None:
    pool = InFlight()
    first, second, other = record(0, 5), record(0, 6), record(1, 9)
    for each in (first, second, other):
        pool.add(each)
    assert (pool.count(), pool.count([("requests", 0)]), pool.count([("requests", 1)])) == (3, 2, 1)
    assert pool.complete(first)
    pool.take_back(second)
    assert (pool.count(), pool.count([("requests", 0)])) == (1, 0)
    assert not pool.complete(second)  # taken back: it never completes as ours


def test_a_record_of_a_partition_given_up_and_assigned_again_completes_stale() -> None:
    """A frozen worker evicted from the group gets its partition back and fetches the record at the committed
    position again while a thread still finishes the old copy: only the new copy's completion counts."""
    pool = InFlight()
    old = record(5, 33)
    pool.add(old)
    pool.forget([("requests", 5)])  # lost: the group moved on
    assert pool.count() == 0
    new = record(5, 33)  # the same record, fetched again under the new assignment
    assert new == old
    pool.add(new)
    assert not pool.complete(old)
    assert pool.count([("requests", 5)]) == 1
    assert pool.complete(new)
    assert pool.count() == 0


def test_giving_up_one_partition_leaves_the_others_records_counted() -> None:
    pool = InFlight()
    kept, lost = record(0, 1), record(1, 1)
    pool.add(kept)
    pool.add(lost)
    pool.forget([("requests", 1)])
    assert pool.count() == 1
    assert pool.complete(kept)
    assert not pool.complete(lost)
