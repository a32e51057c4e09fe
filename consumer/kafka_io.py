"""The Kafka boundary: the only module that imports confluent_kafka.

Consumed messages become `Record`s and outputs are `OutgoingRecord`s, so the
rest of the service is plain Python. Delivery is at least once: offsets are
never stored automatically, and `RequestConsumer.commit` is called only for
records whose outputs the broker has acknowledged. Kafka errors are translated
into Faceguard's types here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.config import ClientConfig, Settings
from consumer.errors import PublishError, SetupError

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Record:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


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


class RequestConsumer:
    """A consumer-group member on the requests topic with explicit, synchronous commits."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self._consumer = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "max.poll.interval.ms": settings.max_poll_interval_ms,
                "isolation.level": "read_committed",
                "error_cb": _log_client_error,
            }
        )
        self._consumer.subscribe(topics)

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout_s` for the first.

        Raises PublishError on a fatal consumer error.
        """
        records = []
        for message in self._consumer.consume(num_messages=max_records, timeout=timeout_s):
            error = message.error()
            if error is None:
                records.append(to_record(message))
            elif error.fatal():
                raise PublishError(f"fatal consumer error: {error.str()}")
            else:
                log.warning("consumer error: %s", error.str())
        return records

    def commit(self, records: Sequence[Record]) -> None:
        """Commit, synchronously, the position after each partition's last record in `records`.

        Records are taken in consumption order, so per partition this is a contiguous run.
        """
        if not records:
            return
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            next_offsets[(record.topic, record.partition)] = record.offset + 1
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in next_offsets.items()]
        try:
            self._consumer.store_offsets(offsets=offsets)
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise PublishError(f"offset commit failed: {exc.args[0]}") from exc

    def close(self) -> None:
        self._consumer.close()


class OutputProducer:
    """An idempotent producer; `send` reports each record's delivery to a callback."""

    def __init__(self, settings: Settings, extra: ClientConfig | None = None) -> None:
        self._producer = Producer(
            {
                **settings.kafka_client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": settings.max_record_bytes,
                "delivery.timeout.ms": int(settings.delivery_timeout_s * 1000),
                "error_cb": _log_client_error,
                **(extra or {}),
            }
        )

    def send(self, record: OutgoingRecord, on_delivery: Callable[[str | None], None]) -> None:
        """Queue `record`; `on_delivery(None)` once acknowledged, `on_delivery(reason)` on failure."""

        def report(error: KafkaError | None, _message: Message) -> None:
            on_delivery(None if error is None else error.str())

        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=[(name, value) for name, value in record.headers],
                    on_delivery=report,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: serve delivery reports, then try again
            except KafkaException as exc:
                raise PublishError(f"could not produce to {record.topic}: {exc.args[0]}") from exc

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued record's delivery report; returns how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)


def create_topics(settings: Settings, partitions: int, replication_factor: int) -> dict[str, str]:
    """Create the service's topics when missing; returns each topic's outcome ("created" or "exists").

    Raises SetupError when the broker refuses.
    """
    image_bytes = str(settings.max_record_bytes)
    topics = [
        NewTopic(settings.topic_requests, partitions, replication_factor),
        NewTopic(settings.topic_masked, partitions, replication_factor, config={"max.message.bytes": image_bytes}),
        NewTopic(settings.topic_metadata, partitions, replication_factor),
        NewTopic(settings.topic_dlq, partitions, replication_factor),
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


def missing_topics(settings: Settings, names: list[str], timeout_s: float = 15.0) -> list[str]:
    """Those of `names` the cluster does not have. Raises SetupError when the brokers cannot be reached."""
    admin = AdminClient(settings.kafka_client_config())
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise SetupError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc.args[0].str()}") from exc
    return [name for name in names if name not in existing]


def _log_client_error(error: KafkaError) -> None:
    log.warning("kafka client: %s", error.str())


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
                "error_cb": _log_client_error,
            }
        )
        self._consumer.subscribe(topics)

    def poll_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout_s)
        return [to_record(m) for m in messages if m.error() is None]

    def close(self) -> None:
        self._consumer.close()


def publish(settings: Settings, records: Sequence[OutgoingRecord], timeout_s: float = 30.0) -> list[str | None]:
    """Publish `records` and wait; returns each one's delivery error, or None when acknowledged."""
    producer = OutputProducer(settings)
    outcomes: list[str | None] = ["not acknowledged in time"] * len(records)
    for index, record in enumerate(records):

        def done(error: str | None, index: int = index) -> None:
            outcomes[index] = error

        producer.send(record, done)
    producer.flush(timeout_s)
    return outcomes
