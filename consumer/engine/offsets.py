"""Which offsets may be committed when records finish out of order.

Records of a partition are consumed in offset order but may finish in any
order. A partition's committed position only ever advances over a contiguous
run of finished records: if offsets 5, 6 and 7 are in flight and 6 and 7 finish
first, nothing is committable until 5 finishes, and then all three are.
Each finished record carries a payload (its outputs, or nothing) that is handed
back, in offset order, together with the position to commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from consumer.records import PartitionKey

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    offset: int
    done: bool = False
    payload: T | None = None


@dataclass(frozen=True)
class Committable(Generic[T]):
    """A contiguous run of finished records of one partition, in offset order."""

    partition: PartitionKey
    next_offset: int  # the position to commit: the last record's offset + 1
    finished: list[tuple[int, T | None]] = field(default_factory=list)  # each record's offset and payload

    @property
    def payloads(self) -> list[T]:
        """The records' payloads, in offset order (records finished without one are left out)."""
        return [payload for _, payload in self.finished if payload is not None]


class OffsetTracker(Generic[T]):
    """Tracks consumed-but-uncommitted records per partition. Not thread-safe: one owner thread."""

    def __init__(self) -> None:
        self._slots: dict[PartitionKey, deque[_Slot[T]]] = {}
        self._index: dict[tuple[PartitionKey, int], _Slot[T]] = {}
        self._finished = 0

    def consumed(self, partition: PartitionKey, offset: int) -> None:
        """Register a record handed to processing. Offsets of a partition must increase."""
        slots = self._slots.setdefault(partition, deque())
        if slots and slots[-1].offset >= offset:
            raise ValueError(f"offset {offset} of {partition} is not after {slots[-1].offset}")
        slot: _Slot[T] = _Slot(offset)
        slots.append(slot)
        self._index[(partition, offset)] = slot

    def finish(self, partition: PartitionKey, offset: int, payload: T | None = None) -> bool:
        """Mark a record finished. Returns False when it is not tracked (its partition was dropped)."""
        slot = self._index.get((partition, offset))
        if slot is None or slot.done:
            return False
        slot.done, slot.payload = True, payload
        self._finished += 1
        return True

    def tracks(self, partition: PartitionKey, offset: int) -> bool:
        return (partition, offset) in self._index

    def take_committable(self) -> list[Committable[T]]:
        """Remove and return each partition's leading run of finished records."""
        runs = []
        for partition, slots in self._slots.items():
            finished: list[tuple[int, T | None]] = []
            while slots and slots[0].done:
                slot = slots.popleft()
                del self._index[(partition, slot.offset)]
                self._finished -= 1
                finished.append((slot.offset, slot.payload))
            if finished:
                runs.append(Committable(partition, finished[-1][0] + 1, finished))
        return runs

    def restore(self, runs: list[Committable[T]]) -> None:
        """Put runs taken by `take_committable` back, finished, ahead of their partitions' later records (their
        commit failed). Runs of partitions dropped meanwhile are not restored."""
        for run in runs:
            slots = self._slots.get(run.partition)
            if slots is None:
                continue
            for offset, payload in reversed(run.finished):
                slot: _Slot[T] = _Slot(offset, done=True, payload=payload)
                slots.appendleft(slot)
                self._index[(run.partition, offset)] = slot
                self._finished += 1

    def drop(self, partitions: Iterable[PartitionKey]) -> int:
        """Forget partitions (revoked or lost); returns how many records were still uncommitted."""
        dropped = 0
        for partition in partitions:
            for slot in self._slots.pop(partition, deque()):
                del self._index[(partition, slot.offset)]
                self._finished -= slot.done
                dropped += 1
        return dropped

    def head(self, partition: PartitionKey) -> int | None:
        """The offset of the partition's first uncommitted record (None: none)."""
        slots = self._slots.get(partition)
        return slots[0].offset if slots else None

    def pending(self, partitions: Iterable[PartitionKey] | None = None) -> int:
        """Uncommitted records (finished or not), in `partitions` or in all."""
        keys = self._slots.keys() if partitions is None else partitions
        return sum(len(self._slots.get(key, ())) for key in keys)

    @property
    def committable_count(self) -> int:
        """Finished records waiting for a commit (some may wait behind an unfinished one)."""
        return self._finished
