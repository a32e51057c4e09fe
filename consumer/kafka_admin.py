"""Kafka administration and the command-line clients: topics, publishing, reading outputs.

With `kafka_io`, the only modules that import confluent_kafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.config import Settings
from consumer.errors import SetupError
from consumer.kafka_io import OutputProducer, log_client_error, to_record
from consumer.records import OutgoingRecord, Record


def service_topics(settings: Settings) -> list[str]:
    """Every topic the service reads or writes: requests, retry tiers, masked images, metadata, dead letters."""
    return [*settings.input_topics, settings.topic_masked, settings.topic_metadata, settings.topic_dlq]


def create_topics(settings: Settings, partitions: int, replication_factor: int) -> dict[str, str]:
    """Create the service's topics when missing; returns each topic's outcome ("created" or "exists").

    Raises SetupError when the broker refuses.
    """
    configs = {settings.topic_masked: {"max.message.bytes": str(settings.max_record_bytes)}}
    topics = [
        NewTopic(name, partitions, replication_factor, config=configs.get(name, {}))
        for name in service_topics(settings)
    ]
    admin = AdminClient(settings.kafka_client_config())
    outcome = {}
    for name, future in admin.create_topics(topics, request_timeout=30).items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SetupError(f"could not create topic {name}: {error.str()}") from exc
            outcome[name] = "exists"
    return outcome


def delete_topics(settings: Settings) -> None:
    """Delete the service's topics (those `create_topics` makes), e.g. a benchmark run's own.

    Raises SetupError when the broker refuses; a topic already gone is no error.
    """
    admin = AdminClient(settings.kafka_client_config())
    for name, future in admin.delete_topics(service_topics(settings), request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise SetupError(f"could not delete topic {name}: {error.str()}") from exc


def missing_topics(settings: Settings, names: list[str], timeout_s: float = 15.0) -> list[str]:
    """Those of `names` the cluster does not have. Raises SetupError when the brokers cannot be reached."""
    admin = AdminClient(settings.kafka_client_config())
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise SetupError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc.args[0].str()}") from exc
    return [name for name in names if name not in existing]


class OutputReader:
    """Reads topics from the beginning under a throwaway group, committing nothing (read_committed)."""

    def __init__(self, settings: Settings, topics: list[str], group_id: str) -> None:
        self._consumer = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "error_cb": log_client_error,
            }
        )
        self._consumer.subscribe(topics)

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to `max_records` records: waits up to `timeout_s` for the first, then takes what is buffered."""
        messages = self._consumer.consume(num_messages=1, timeout=timeout_s)
        if messages and max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        return [to_record(m) for m in messages if m.error() is None]

    def close(self) -> None:
        self._consumer.close()


def read_snapshot(settings: Settings, topic: str, timeout_s: float = 30.0) -> Iterator[Record]:
    """Every committed record of `topic` up to its end when called; no group, no commits.

    Raises SetupError when the topic does not exist or the brokers cannot be reached.
    """
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"faceguard-snapshot-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,  # the end is where it says so: markers may follow the last record
            "isolation.level": "read_committed",
            "error_cb": log_client_error,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise SetupError(f"topic {topic} does not exist")
        ends: dict[int, int] = {}
        starts = []
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, low))
        consumer.assign(starts)
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise SetupError(f"reading {topic} stalled; partitions {sorted(ends)} did not reach their end")
            for message in consumer.consume(num_messages=500, timeout=0.2):
                deadline = time.monotonic() + timeout_s
                partition, offset = message.partition() or 0, message.offset() or 0
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    ends.pop(partition, None)
                elif error is None and offset < ends.get(partition, -1):
                    yield to_record(message)
                    if offset + 1 >= ends[partition]:
                        ends.pop(partition)
    except KafkaException as exc:
        raise SetupError(f"cannot read {topic}: {exc.args[0]}") from exc
    finally:
        consumer.close()


def publish(
    settings: Settings, records: Sequence[OutgoingRecord], timeout_s: float = 30.0, rate_per_s: float = 0.0
) -> list[str | None]:
    """Publish `records` (at most `rate_per_s` a second when set) and wait; returns each one's delivery error,
    or None when acknowledged."""
    producer = OutputProducer(settings)
    outcomes: list[str | None] = ["not acknowledged in time"] * len(records)
    started = time.monotonic()
    for index, record in enumerate(records):
        if rate_per_s > 0:
            time.sleep(max(0.0, started + index / rate_per_s - time.monotonic()))
            producer.poll()

        def done(error: str | None, index: int = index) -> None:
            outcomes[index] = error

        producer.send(record, done)
    producer.flush(timeout_s)
    return outcomes
