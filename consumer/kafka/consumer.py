"""The worker's consumer: a group member on the input topics that commits only when told to.

It never commits on its own (no auto commit, no auto offset store), reads
`read_committed`, and reports assignment changes to a `RebalanceListener`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.errors import GroupChanged, PublishError
from consumer.kafka.messages import (
    KAFKA_LOG,
    MEMBERSHIP_LOST,
    Offsets,
    consume_available,
    log_client_error,
    to_record,
    topic_partitions,
)
from consumer.kafka.options import ClientConfig, GroupOptions, GroupProtocol
from consumer.records import Committed, PartitionKey, Record

log = logging.getLogger(__name__)


class RebalanceListener(Protocol):
    """Hears of assignment changes; called inside `RequestConsumer.consume`, on the consumer's thread."""

    def on_assign(self, partitions: list[PartitionKey]) -> None: ...

    def on_revoke(self, partitions: list[PartitionKey]) -> None: ...

    def on_lost(self, partitions: list[PartitionKey]) -> None: ...


class RequestConsumer:
    """A consumer-group member on the input topics. Commits only when told to.

    Its statistics, every `stats_interval_s`, say from which committed offset each assigned partition
    started: lag on a partition it has consumed nothing from counts from there."""

    def __init__(
        self,
        client: ClientConfig,
        group: GroupOptions,
        topics: list[str],
        stats_interval_s: float,
    ) -> None:
        self._started_from: dict[PartitionKey, int | None] = {}
        config: dict[str, Any] = {
            **client,
            "logger": KAFKA_LOG,
            "group.id": group.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "max.poll.interval.ms": group.max_poll_interval_ms,
            "isolation.level": "read_committed",
            "error_cb": log_client_error,
            "statistics.interval.ms": int(stats_interval_s * 1000),
            "stats_cb": self._read_stats,
        }
        if group.instance_id is not None:
            # A static member: restarted under the same id within the session timeout, it gets its partitions
            # back without a rebalance (KIP-345; the consumer protocol of KIP-848 keeps static members).
            config["group.instance.id"] = group.instance_id
        if group.protocol is GroupProtocol.CONSUMER:
            config["group.protocol"] = "consumer"  # KIP-848: the broker assigns, incrementally
            # Range spreads each topic's partitions over the members on its own, so the requests topic is
            # shared evenly whatever the retry topics' partitions do.
            config["group.remote.assignor"] = "range"
        else:
            # Range spreads each topic's partitions over the members on its own: the requests topic is shared
            # evenly whatever order the workers joined in. cooperative-sticky balanced the partition count over
            # all topics together, and a worker joining a busy one got every requests partition while the first
            # kept only idle retry partitions (docs/guarantees.md). Range rebalances eagerly: each member
            # finishes and commits its in-flight records, then gets its new share.
            config["partition.assignment.strategy"] = "range"
            config["session.timeout.ms"] = group.session_timeout_ms
        self._consumer = Consumer(config)

        self._topics = topics

    def subscribe(self, listener: RebalanceListener) -> None:
        """Join the group; `listener` hears of assignment changes, inside `consume`, on the caller's thread."""

        def keys(partitions: list[TopicPartition]) -> list[PartitionKey]:
            return [(tp.topic, tp.partition) for tp in partitions]

        def forget(partitions: list[PartitionKey]) -> list[PartitionKey]:
            for partition in partitions:
                self._started_from.pop(partition, None)
            return partitions

        self._consumer.subscribe(
            self._topics,
            on_assign=lambda _c, parts: listener.on_assign(keys(parts)),
            on_revoke=lambda _c, parts: listener.on_revoke(forget(keys(parts))),
            on_lost=lambda _c, parts: listener.on_lost(forget(keys(parts))),
        )

    def _read_stats(self, stats_json: str) -> None:
        """librdkafka's statistics (served by `consume`): each partition's committed offset once its
        fetching is under way, that is once the offset it starts from is settled."""
        for topic, topic_stats in json.loads(stats_json).get("topics", {}).items():
            for partition, stats in topic_stats.get("partitions", {}).items():
                if partition != "-1" and stats.get("fetch_state") == "active":  # -1: librdkafka's own queue
                    committed = stats.get("committed_offset", -1)
                    self._started_from[(topic, int(partition))] = committed if committed >= 0 else None

    def started_from(self) -> dict[PartitionKey, int | None]:
        """The committed offset (None: none) each partition started from, for those whose fetching began."""
        return dict(self._started_from)

    def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout_s` for the first; serves rebalance callbacks.

        Raises PublishError on a fatal consumer error.
        """
        records = []
        for message in consume_available(self._consumer, max_records, timeout_s):
            error = message.error()
            if error is None:
                records.append(to_record(message))
            elif error.fatal():
                raise PublishError(f"fatal consumer error: {error.str()}")
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error.str())
        return records

    def pause(self, partitions: Iterable[PartitionKey]) -> None:
        """Stop fetching `partitions` (prefetched records are dropped; fetching resumes at the next unread one)."""
        self._consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Iterable[PartitionKey]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def commit(self, offsets: Offsets, metadata: dict[PartitionKey, str] | None = None) -> None:
        """Commit these positions, each with its commit `metadata`, synchronously (at_least_once). Raises
        GroupChanged when this member's generation is over, PublishError when the group refuses otherwise."""
        if not offsets:
            return
        partitions = topic_partitions(offsets, metadata)
        try:
            self._consumer.store_offsets(offsets=partitions)
            self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() in MEMBERSHIP_LOST:
                raise GroupChanged(error.str()) from exc
            raise PublishError(f"offset commit failed: {error}") from exc

    def committed(self, partitions: Iterable[PartitionKey], timeout_s: float) -> dict[PartitionKey, Committed]:
        """Each partition's committed position and its metadata, with the partition's end offset when a fetch
        has told it. Raises PublishError when the group coordinator does not answer in `timeout_s`."""
        wanted = [TopicPartition(t, p) for t, p in partitions]
        if not wanted:
            return {}
        try:
            answers = self._consumer.committed(wanted, timeout=timeout_s)
        except KafkaException as exc:
            raise PublishError(f"could not read committed offsets: {exc.args[0]}") from exc
        committed = {}
        for tp in answers:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            end = high if high is not None and high >= 0 else None
            committed[(tp.topic, tp.partition)] = Committed(tp.offset, tp.metadata or "", end)
        return committed

    def positions(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, int]:
        """The consumer's next offset per partition (-1 before its first fetch); local, no broker call."""
        wanted = [TopicPartition(t, p) for t, p in partitions]
        return {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(wanted)} if wanted else {}

    def group_metadata(self) -> Any:
        """The consumer's group metadata, for sending offsets within a transaction."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (runs the revoke callback for what is still assigned)."""
        self._consumer.close()
