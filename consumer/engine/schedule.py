"""Holding retry records until they are due, without holding up anything else.

A retry topic's records carry the time before which they must not run. The
worker hands each consumed retry record to `DelayedRecords`; a record that is
not due waits here, and so does every later record of its partition (order
within a partition is kept). The worker pauses the partitions that have a
waiting head, so the main topic and the other retry partitions keep flowing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from consumer.records import PartitionKey

T = TypeVar("T")


class DelayedRecords(Generic[T]):
    """Per-partition queues of records waiting for their due time (epoch seconds)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._waiting: dict[PartitionKey, deque[tuple[float, T]]] = {}

    def admit(self, partition: PartitionKey, due_at: float, item: T) -> bool:
        """True when `item` may run now; otherwise it is held, behind any earlier held item of its partition."""
        queue = self._waiting.get(partition)
        if not queue and due_at <= self._clock():
            return True
        self._waiting.setdefault(partition, deque()).append((due_at, item))
        return False

    def release_due(self) -> list[T]:
        """Remove and return, in partition order, every held item that is due and has no earlier one waiting."""
        now = self._clock()
        released: list[T] = []
        for partition in list(self._waiting):
            queue = self._waiting[partition]
            while queue and queue[0][0] <= now:
                released.append(queue.popleft()[1])
            if not queue:
                del self._waiting[partition]
        return released

    def waiting_partitions(self) -> set[PartitionKey]:
        return set(self._waiting)

    def next_due_in(self) -> float | None:
        """Seconds until the earliest head is due (0 when one is), None when nothing waits."""
        if not self._waiting:
            return None
        return max(0.0, min(queue[0][0] for queue in self._waiting.values()) - self._clock())

    def drop(self, partitions: Iterable[PartitionKey]) -> int:
        """Forget held items of revoked partitions; returns how many."""
        return sum(len(self._waiting.pop(partition, ())) for partition in partitions)

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())
