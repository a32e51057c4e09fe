"""The offsets behind lag, on the real broker: the consumer's committed starting points, and the watermark
reader (also behind readiness) across a restart of the broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from consumer.config import Settings
from consumer.kafka.consumer import RequestConsumer
from consumer.kafka.watermarks import LogOffsets, WatermarkReader
from consumer.records import PartitionKey
from tests.integration.conftest import broker
from tests.integration.stack import create_service_topics
from tests.support import wait_for

pytestmark = pytest.mark.kafka


class Assignments:
    """A rebalance listener that writes down what it was assigned."""

    def __init__(self) -> None:
        self.assigned: list[PartitionKey] = []

    def on_assign(self, partitions: list[PartitionKey]) -> None:
        self.assigned.extend(partitions)

    def on_revoke(self, partitions: list[PartitionKey]) -> None:
        pass

    def on_lost(self, partitions: list[PartitionKey]) -> None:
        pass


def test_lag_of_partitions_consumed_before_counts_from_their_commit(kafka_bootstrap: str) -> None:
    # A worker that takes over partitions with nothing new has no position on them: lag must count from
    # the previous owner's commit (0 here), not from the log's start (5) nor be left out.
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_requests=f"wm{uuid.uuid4().hex[:8]}.requests")
    create_service_topics(settings, 2)
    used, empty = (settings.topic_requests, 0), (settings.topic_requests, 1)
    producer = Producer(settings.kafka_client_config())
    for n in range(5):
        producer.produce(settings.topic_requests, f"record {n}".encode(), partition=0)
    assert producer.flush(30) == 0
    previous_owner = Consumer({**settings.kafka_client_config(), "group.id": settings.group_id})
    previous_owner.commit(offsets=[TopicPartition(settings.topic_requests, 0, 5)], asynchronous=False)
    previous_owner.close()

    listener = Assignments()
    client = settings.kafka_client_config()
    consumer = RequestConsumer(client, settings.group_options, settings.topics.inputs, stats_interval_s=0.5)
    consumer.subscribe(listener)
    reader = WatermarkReader(client, 0.5)
    try:
        reader.watch([used, empty])

        def settled() -> bool:
            assert consumer.consume(10, 0.2) == []  # everything was committed: nothing to consume
            return {used, empty} <= consumer.started_from().keys() and len(reader.logs) == 2

        wait_for(settled, 30, "both partitions assigned, fetching, and their log offsets read")
        assert {used, empty} <= set(listener.assigned)  # with the retry topics' partitions
        assert (consumer.started_from()[used], consumer.started_from()[empty]) == (5, None)
        assert consumer.positions([used, empty]) == {used: -1001, empty: -1001}
        assert reader.logs == {used: LogOffsets(0, 5), empty: LogOffsets(0, 0)}
        assert [reader.logs[p].lag(-1001, consumer.started_from()[p]) for p in (used, empty)] == [0, 0]
    finally:
        reader.close()
        consumer.close()


def test_watermarks_are_read_again_after_the_broker_restarts(own_broker: tuple[str, Path]) -> None:
    # The reader has read the partition before the restart, so its client holds the partition's leader
    # epoch from before; the restarted broker refuses that epoch until the client's metadata is refreshed.
    bootstrap, data = own_broker
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_requests=f"wm{uuid.uuid4().hex[:8]}.requests")
    create_service_topics(settings, 1)
    partition = (settings.topic_requests, 0)
    reader = WatermarkReader(settings.kafka_client_config(), 0.5)
    try:
        reader.watch([partition])
        wait_for(
            lambda: (log := reader.logs.get(partition)) is not None and log.high == 0 and reader.reachable,
            30,
            "the first watermark",
        )

        broker("stop", data)
        wait_for(lambda: not reader.reachable, 30, "the reader to see the broker gone")
        broker("start", data)
        producer = Producer(settings.kafka_client_config())
        producer.produce(settings.topic_requests, b"after the restart")
        assert producer.flush(30) == 0

        wait_for(lambda: reader.reachable, 30, "the broker to answer again")
        wait_for(
            lambda: (log := reader.logs.get(partition)) is not None and log.high == 1,
            30,
            "the watermark after the restart (stale: old epoch)",
        )
    finally:
        reader.close()
