"""Conversions shared by our Kafka clients: messages to `Record`s, `OutgoingRecord`s to produce calls.

Kafka errors are translated into Faceguard's here and in the clients, nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from consumer.errors import PublishError
from consumer.records import Headers, OutgoingRecord, PartitionKey, Record

log = logging.getLogger(__name__)
KAFKA_LOG = logging.getLogger("kafka")  # librdkafka's own lines, formatted like ours

# Offsets refused because this member's generation is over (KIP-447): it was evicted, or the group rebalanced
# under it. Retrying cannot help; the consumer learns of it (lost or revoked partitions) on its next poll.
MEMBERSHIP_LOST = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)

# (topic, partition) -> next offset to consume
Offsets = dict[PartitionKey, int]


def to_record(message: Message) -> Record:
    _, timestamp = message.timestamp()
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        timestamp_ms=timestamp,
        headers=decoded_headers(message),
    )


def decoded_headers(message: Message) -> Headers:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(name, value.encode() if isinstance(value, str) else value or b"") for name, value in pairs]


def log_client_error(error: KafkaError) -> None:
    log.warning("kafka client: %s", error.str())


def topic_partitions(offsets: Offsets, metadata: dict[PartitionKey, str] | None = None) -> list[TopicPartition]:
    """Offsets to commit, each with its commit metadata when `metadata` names one."""
    metadata = metadata or {}
    return [
        TopicPartition(topic, partition, offset, metadata=metadata.get((topic, partition)))
        for (topic, partition), offset in offsets.items()
    ]


def consume_available(consumer: Consumer, max_records: int, timeout_s: float) -> list[Message]:
    """Up to `max_records` messages: waits at most `timeout_s` for the first, then takes what is buffered.

    consume(n, timeout) would wait out the whole timeout for n messages, holding a lone one back.
    """
    messages = consumer.consume(num_messages=1, timeout=timeout_s)
    if messages and max_records > 1:
        messages += consumer.consume(num_messages=max_records - 1, timeout=0)
    return messages


def produce(producer: Producer, record: OutgoingRecord, on_delivery: Callable[..., None] | None) -> None:
    """Queue `record`, waiting for room while the local queue is full. Raises PublishError when refused."""
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=[(n, v) for n, v in record.headers],
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            producer.poll(0.1)  # local queue full: serve delivery reports, then try again
        except KafkaException as exc:
            raise PublishError(f"could not produce to {record.topic}: {exc.args[0]}") from exc
