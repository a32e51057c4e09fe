"""The typed options of the Kafka clients, built once from the settings at the composition root.

No confluent_kafka here: the settings and the tests build these without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# librdkafka configuration: dotted keys to values.
ClientConfig = dict[str, str | int | float | bool]


class GroupProtocol(StrEnum):
    CLASSIC = "classic"  # the client-side range assignor, eager rebalances
    CONSUMER = "consumer"  # KIP-848: the broker assigns partitions (range), incrementally


@dataclass(frozen=True)
class GroupOptions:
    """How the worker's consumer takes part in its group."""

    group_id: str
    protocol: GroupProtocol
    session_timeout_ms: int
    max_poll_interval_ms: int
    instance_id: str | None = None  # static membership (group.instance.id); None: a dynamic member


@dataclass(frozen=True)
class ProducerOptions:
    """What every producer of ours is allowed: the largest record, and how long acknowledgement may take."""

    max_record_bytes: int
    delivery_timeout_s: float


@dataclass(frozen=True)
class TransactionOptions:
    """The worker's transactional identity (stable per worker, so a restart fences its predecessor)."""

    transactional_id: str
    timeout_s: float
