"""How often each record was attempted without finishing: in memory, and across restarts through crash marks.

A record whose processing raises is counted here and tried again; one that kills
the worker outright (out of memory, a crash in native code, SIGKILL) leaves no
exception to count. So every offset commit carries a *crash mark* in its
metadata, `faceguard:attempts=N@OFFSET`: the next record of the partition, at the
committed position, is on its Nth attempt. A normal commit moves the position on
and marks the record after it; a clean revoke or shutdown writes the mark back
without the unfinished attempt. A committed position still marked when a new
owner reads it means a worker died there.

The new owner then processes the marked record *carefully*: alone across the
whole worker, marked (its attempt counted) in a commit of its own before it is
dispatched, so a death then can only be charged to it. A record with
`MAX_BUG_ATTEMPTS` attempts charged is dead-lettered as `processing_bug` without
processing it again. Care lasts, per partition, over `window` records from the
marked position (the worker uses one), or up to the partition's end when that is
nearer; a culprit further on is charged once it is the first unfinished record
at a death.
"""

from __future__ import annotations

import re
import threading

from consumer.records import Committed, PartitionKey, Record

MAX_BUG_ATTEMPTS = 3  # attempts of one record that raised or killed the worker before it is dead-lettered
MAX_TRACKED = 10_000  # records remembered with attempts; the oldest are forgotten beyond it

_MARK = re.compile(r"faceguard:attempts=(\d{1,9})@(\d{1,19})")

AttemptKey = tuple[str, int, int]  # topic, partition, offset


def crash_mark(attempts: int, offset: int) -> str:
    """The commit metadata saying the record at `offset` is on its `attempts`th attempt ("" for none)."""
    return f"faceguard:attempts={attempts}@{offset}" if attempts > 0 else ""


def marked_attempts(metadata: str | None) -> tuple[int, int] | None:
    """(attempts, offset) of a crash mark; None when the metadata is not one (another client's, or empty)."""
    match = _MARK.fullmatch(metadata or "")
    return None if match is None else (int(match[1]), int(match[2]))


def key_of(record: Record) -> AttemptKey:
    return (record.topic, record.partition, record.offset)


class Attempts:
    """Unfinished attempts per record, shared by the consumer thread and the processing threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[AttemptKey, int] = {}

    def count(self, key: AttemptKey) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def charge(self, key: AttemptKey, attempts: int | None = None) -> int:
        """Count one more failed attempt of `key` (or set the count, read from a crash mark); returns it."""
        with self._lock:
            count = self._counts.pop(key, 0) + 1 if attempts is None else attempts
            self._counts[key] = count
            while len(self._counts) > MAX_TRACKED:
                del self._counts[next(iter(self._counts))]
            return count

    def exhausted(self, key: AttemptKey) -> bool:
        """Attempted `MAX_BUG_ATTEMPTS` times already: dead-letter it instead of trying again."""
        return self.count(key) >= MAX_BUG_ATTEMPTS

    def forget(self, key: AttemptKey) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def mark(self, partition: PartitionKey, offset: int, in_flight: bool) -> str:
        """The crash mark to commit at `offset` of `partition`: its attempts so far, plus the one about to
        start or under way when `in_flight`."""
        return crash_mark(self.count((*partition, offset)) + in_flight, offset)


class CareWindows:
    """Which partitions a worker died on, and up to which offset each is processed carefully."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._until: dict[PartitionKey, int] = {}
        self._read: set[PartitionKey] = set()

    def unread(self, partitions: set[PartitionKey]) -> set[PartitionKey]:
        """Those of `partitions` whose committed position was not read since they were assigned."""
        return partitions - self._read

    def read(self, partition: PartitionKey, committed: Committed, attempts: Attempts) -> None:
        """Take in a partition's committed position: a crash mark there charges its record and starts care."""
        self._read.add(partition)
        mark = marked_attempts(committed.metadata)
        if mark is None or mark[1] != committed.offset:
            return
        count, offset = mark
        attempts.charge((*partition, offset), max(count, attempts.count((*partition, offset))))
        until = offset + self._window
        self._until[partition] = until if committed.end is None else max(offset + 1, min(until, committed.end))

    def passed(self, partition: PartitionKey, next_offset: int) -> None:
        """Every record of `partition` before `next_offset` finished (or is known not to exist)."""
        if (until := self._until.get(partition)) is not None and next_offset >= until:
            del self._until[partition]
            self._read.add(partition)

    def careful_partitions(self) -> set[PartitionKey]:
        return set(self._until)

    @property
    def careful(self) -> bool:
        return bool(self._until)

    def forget(self, partitions: set[PartitionKey]) -> None:
        self._read -= partitions
        for partition in partitions:
            self._until.pop(partition, None)
