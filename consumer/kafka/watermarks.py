"""How far each partition's log reaches, read on a thread of its own for lag and broker reachability."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # OffsetSpec: not in stubs

from consumer.kafka.messages import KAFKA_LOG
from consumer.kafka.options import ClientConfig
from consumer.records import PartitionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogOffsets:
    """A partition's log as the broker reports it: the first offset it still holds and the next to be written."""

    low: int
    high: int

    def lag(self, position: int, committed: int | None) -> int:
        """Records the group has yet to consume. From the consumer's position when it has one; before its
        first record from the partition (an empty partition never gives it one), from where it started:
        the group's committed offset, or with none the log's start (`auto.offset.reset=earliest`).
        Records that retention has deleted are not lag: a position before the log's start resets to it."""
        if position < 0:
            position = committed if committed is not None else self.low
        return max(0, self.high - max(position, self.low))


class WatermarkReader:
    """Reads the log offsets (first and next) of the watched partitions on a thread of its own, every
    `interval_s`, in two ListOffsets requests (an AdminClient, so the consumer thread never waits on the
    broker).
    `reachable` says whether the broker answered the last round.

    When a read fails, a metadata request decides whether the broker is there. It also refreshes the
    partitions' leader epochs: after a broker restarts, librdkafka's ListOffsets keeps sending the
    epochs from before it, and the broker refuses them (FENCED_LEADER_EPOCH) until metadata is
    fetched again, which nothing else in an AdminClient does."""

    def __init__(self, client: ClientConfig, interval_s: float) -> None:
        config: dict[str, Any] = {**client, "logger": KAFKA_LOG}
        self._admin = AdminClient(config)
        self._interval_s = interval_s
        self._watched: frozenset[PartitionKey] = frozenset()
        self.logs: dict[PartitionKey, LogOffsets] = {}
        self.reachable = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watermarks", daemon=True)
        self._thread.start()

    def watch(self, partitions: Iterable[PartitionKey]) -> None:
        self._watched = frozenset(partitions)

    def _run(self) -> None:
        failure = ""  # the last failure logged, so that a lasting one is logged once
        while True:
            watched = self._watched  # one snapshot: the consumer thread may replace it meanwhile
            try:
                if watched:
                    self.logs = self._read(watched)
                    self.reachable, failure = True, ""
                else:
                    self.reachable = self._metadata_answered()
            except (KafkaException, FutureTimeout) as exc:
                self.reachable = self._metadata_answered()
                if str(exc) != failure:
                    failure = str(exc)
                    log.warning("watermark query failed (broker %s): %s", "up" if self.reachable else "down", exc)
            if self._stop.wait(self._interval_s):
                return

    @property
    def _timeout_s(self) -> float:
        return max(1.0, self._interval_s)

    def _read(self, partitions: frozenset[PartitionKey]) -> dict[PartitionKey, LogOffsets]:
        lows = self._list_offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        highs = self._list_offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {p: LogOffsets(lows[p], highs[p]) for p in partitions}

    def _list_offsets(self, partitions: frozenset[PartitionKey], spec: Any) -> dict[PartitionKey, int]:
        wanted = {TopicPartition(t, p): spec for t, p in partitions}
        futures = self._admin.list_offsets(wanted, request_timeout=self._timeout_s)
        return {(tp.topic, tp.partition): future.result(self._timeout_s).offset for tp, future in futures.items()}

    def _metadata_answered(self) -> bool:
        try:
            self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException:
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
