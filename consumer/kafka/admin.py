"""Topic administration: create, delete and check the service's topics."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.errors import SetupError
from consumer.kafka.messages import KAFKA_LOG, log_client_error
from consumer.kafka.options import ClientConfig
from consumer.topics import Topics


class TopicState(StrEnum):
    """What `create_topics` found or did for one topic."""

    CREATED = "created"
    EXISTS = "exists"


def create_topics(
    client: ClientConfig, topics: Topics, partitions: int, replication_factor: int, max_record_bytes: int
) -> dict[str, TopicState]:
    """Create the service's topics when missing (the masked-images topic taking records of
    `max_record_bytes`); returns what became of each. Raises SetupError when the broker refuses.
    """
    configs = {topics.masked: {"max.message.bytes": str(max_record_bytes)}}
    new = [NewTopic(name, partitions, replication_factor, config=configs.get(name, {})) for name in topics.all]
    admin = admin_client(client)
    outcome = {}
    for name, future in admin.create_topics(new, request_timeout=30).items():
        try:
            future.result()
            outcome[name] = TopicState.CREATED
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SetupError(f"could not create topic {name}: {error.str()}") from exc
            outcome[name] = TopicState.EXISTS
    return outcome


def delete_topics(client: ClientConfig, topics: Topics) -> None:
    """Delete the service's topics (those `create_topics` makes), e.g. a benchmark run's own.

    Raises SetupError when the broker refuses; a topic already gone is no error.
    """
    admin = admin_client(client)
    for name, future in admin.delete_topics(topics.all, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise SetupError(f"could not delete topic {name}: {error.str()}") from exc


def missing_topics(client: ClientConfig, names: list[str], timeout_s: float = 15.0) -> list[str]:
    """Those of `names` the cluster does not have. Raises SetupError when the brokers cannot be reached."""
    admin = admin_client(client)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        servers = client.get("bootstrap.servers")
        raise SetupError(f"cannot reach Kafka at {servers}: {exc.args[0].str()}") from exc
    return [name for name in names if name not in existing]


def admin_client(client: ClientConfig) -> AdminClient:
    """An admin client whose librdkafka lines and errors go through our log formatter."""
    config: dict[str, Any] = {**client, "logger": KAFKA_LOG, "error_cb": log_client_error}
    return AdminClient(config)
