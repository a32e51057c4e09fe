"""The command line's Kafka clients: read outputs, read a topic to its end, publish records."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.errors import SetupError
from consumer.kafka.messages import KAFKA_LOG, consume_available, log_client_error, to_record
from consumer.kafka.options import ClientConfig, ProducerOptions
from consumer.kafka.producers import OutputProducer
from consumer.records import OutgoingRecord, Record


class OutputReader:
    """Reads topics from the beginning under a throwaway group, committing nothing (read_committed)."""

    def __init__(self, client: ClientConfig, topics: list[str], group_id: str) -> None:
        self._consumer = Consumer(
            {
                **client,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "error_cb": log_client_error,
                "logger": KAFKA_LOG,
            }
        )
        self._consumer.subscribe(topics)

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to `max_records` records: waits up to `timeout_s` for the first, then takes what is buffered."""
        messages = consume_available(self._consumer, max_records, timeout_s)
        return [to_record(m) for m in messages if m.error() is None]

    def close(self) -> None:
        self._consumer.close()


def read_snapshot(client: ClientConfig, topic: str, timeout_s: float = 30.0) -> Iterator[Record]:
    """Every committed record of `topic` up to its end when called; no group, no commits.

    Raises SetupError when the topic does not exist or the brokers cannot be reached.
    """
    consumer = Consumer(
        {
            **client,
            "group.id": f"faceguard-snapshot-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,  # the end is where it says so: markers may follow the last record
            "isolation.level": "read_committed",
            "error_cb": log_client_error,
            "logger": KAFKA_LOG,
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
    client: ClientConfig,
    options: ProducerOptions,
    records: Sequence[OutgoingRecord],
    rate_per_s: float = 0.0,
) -> list[str | None]:
    """Publish `records` (at most `rate_per_s` a second when set) and wait; returns each one's delivery error,
    or None when acknowledged within the producer's delivery timeout."""
    producer = OutputProducer(client, options)
    outcomes: list[str | None] = ["not acknowledged in time"] * len(records)
    started = time.monotonic()
    for index, record in enumerate(records):
        if rate_per_s > 0:
            time.sleep(max(0.0, started + index / rate_per_s - time.monotonic()))
            producer.poll()

        def done(error: str | None, index: int = index) -> None:
            outcomes[index] = error

        producer.send(record, done)
    producer.flush(options.delivery_timeout_s)
    return outcomes
