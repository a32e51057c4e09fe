"""The watermark reader behind lag and readiness, across a restart of the real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.config import Settings
from consumer.kafka_admin import create_topics
from consumer.kafka_io import WatermarkReader
from tests.integration.conftest import broker
from tests.support import wait_for

pytestmark = pytest.mark.kafka


def test_watermarks_are_read_again_after_the_broker_restarts(own_broker: tuple[str, Path]) -> None:
    # The reader has read the partition before the restart, so its client holds the partition's leader
    # epoch from before; the restarted broker refuses that epoch until the client's metadata is refreshed.
    bootstrap, data = own_broker
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_requests=f"wm{uuid.uuid4().hex[:8]}.requests")
    create_topics(settings, 1, 1)
    partition = (settings.topic_requests, 0)
    reader = WatermarkReader(settings, 0.5)
    try:
        reader.watch([partition])
        wait_for(lambda: reader.highs.get(partition) == 0 and reader.reachable, 30, "the first watermark")

        broker("stop", data)
        wait_for(lambda: not reader.reachable, 30, "the reader to see the broker gone")
        broker("start", data)
        producer = Producer(settings.kafka_client_config())
        producer.produce(settings.topic_requests, b"after the restart")
        assert producer.flush(30) == 0

        wait_for(lambda: reader.reachable, 30, "the broker to answer again")
        wait_for(lambda: reader.highs.get(partition) == 1, 30, "the watermark after the restart (stale: old epoch)")
    finally:
        reader.close()
