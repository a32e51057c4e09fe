"""Records in the processing pool: how many per partition, and whether a completion still counts.

A partition can be lost (a frozen worker evicted from the group) or revoked while
one of its records is being processed, and then assigned to the same worker
again. The group's new generation starts from the committed position, so the
worker fetches that record once more while the thread still holding the old copy
finishes it. The old copy's outcome is not the new assignment's: counted, it
would finish the new copy's slot in the offset tracker, a commit would move past
it, and the new copy, still queued, would wait forever for a head it can never
be (seen: a partition stalled for good when its first record was being processed
carefully after a crash mark). So each record is handed over under the current
assignment of its partition, `forget` starts a new one, and the completion of a
record handed over under an earlier one is stale: the partition's current owner
processes the record again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from consumer.records import PartitionKey, Record


class InFlight:
    """Records handed to the pool and not yet completed or taken back, each with the assignment of its
    partition it was handed over under."""

    def __init__(self) -> None:
        self._assignment: Counter[PartitionKey] = Counter()  # bumped each time a partition is given up
        self._records: dict[int, tuple[Record, int]] = {}  # by id: two fetches of one offset are equal records
        self._counts: Counter[PartitionKey] = Counter()  # records of the current assignments

    def add(self, record: Record) -> None:
        """`record` was handed to the pool."""
        self._records[id(record)] = (record, self._assignment[record.partition_key])
        self._counts[record.partition_key] += 1

    def take_back(self, record: Record) -> None:
        """`record` was taken back from the pool before a thread started it."""
        self.complete(record)

    def complete(self, record: Record) -> bool:
        """`record` finished (or raised): True when it was handed over under its partition's current
        assignment, False when the partition was given up since (its outcome is not this assignment's)."""
        _, assignment = self._records.pop(id(record), (record, -1))
        if assignment != self._assignment[record.partition_key]:
            return False
        self._counts[record.partition_key] -= 1
        return True

    def forget(self, partitions: Iterable[PartitionKey]) -> None:
        """The partitions were lost or revoked: records of theirs still in the pool no longer count."""
        for partition in partitions:
            self._assignment[partition] += 1
            self._counts.pop(partition, None)

    def count(self, partitions: Iterable[PartitionKey] | None = None) -> int:
        """Records of the current assignments in the pool, of `partitions` or of all."""
        if partitions is None:
            return sum(self._counts.values())
        return sum(self._counts[p] for p in partitions)
