"""`faceguard dlq list` and `faceguard dlq redrive`: inspect dead letters and send them back.

Both read the dead-letter topic as it is when the command starts (no consumer
group, nothing committed) and filter on the dead-letter headers. Redrive
republishes each selected request to its original topic with its original key
(so it lands on the same partition as before) and a `faceguard-redrive-count`
header one higher than before; a request redriven `max_redrives` times already
is refused, so a poison request cannot loop forever. A rate limit keeps a large
redrive from swamping the workers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from consumer.errors import SetupError
from consumer.kafka.clients import publish, read_snapshot
from consumer.kafka.options import ClientConfig, ProducerOptions
from consumer.processing.retry import REDRIVE_COUNT_HEADER
from consumer.records import JSON_HEADERS, OutgoingRecord, Record, from_headers
from schemas import DeadLetterHeaders, ErrorClass

log = logging.getLogger(__name__)

REDRIVEN_FROM_HEADER = "faceguard-redriven-from"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeadLetter:
    """A dead-letter record with its parsed headers."""

    record: Record
    headers: DeadLetterHeaders

    @property
    def position(self) -> str:
        return f"{self.record.topic}[{self.record.partition}]@{self.record.offset}"


@dataclass(frozen=True)
class DlqFilter:
    """Which dead letters a command acts on; empty fields match everything."""

    error_classes: frozenset[ErrorClass] = field(default_factory=frozenset)
    original_topics: frozenset[str] = field(default_factory=frozenset)
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        h = letter.headers
        failed_at = h.faceguard_failed_at
        return (
            (not self.error_classes or h.faceguard_error_class in self.error_classes)
            and (not self.original_topics or h.faceguard_original_topic in self.original_topics)
            and (self.since is None or failed_at >= self.since)
            and (self.until is None or failed_at < self.until)
        )


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when no zone is given) or a duration ago: `90s`, `15m`, `2h`, `7d`."""
    if match := _DURATION.match(text.strip()):
        ago = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
        return (now or datetime.now(UTC)) - ago
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SetupError(f"not a time or a duration like 2h: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dead_letters(client: ClientConfig, topic: str, selection: DlqFilter) -> Iterator[DeadLetter]:
    """The dead letters of `topic` matching `selection`, in partition and offset order; unreadable ones skipped."""
    for record in read_snapshot(client, topic):
        try:
            letter = DeadLetter(record, from_headers(DeadLetterHeaders, record.headers))
        except ValidationError:
            log.warning(
                "skipping %s[%d]@%d: not a Faceguard dead letter", record.topic, record.partition, record.offset
            )
            continue
        if selection.matches(letter):
            yield letter


def redrive_record(letter: DeadLetter) -> OutgoingRecord:
    """The request of `letter`, addressed to its original topic with its original key."""
    count = letter.headers.faceguard_redrive_count + 1
    return OutgoingRecord(
        letter.headers.faceguard_original_topic,
        letter.record.key,
        letter.record.value,
        [
            *JSON_HEADERS,
            (REDRIVE_COUNT_HEADER, str(count).encode()),
            (REDRIVEN_FROM_HEADER, letter.position.encode()),
        ],
    )


@dataclass
class RedrivePlan:
    """Which of the selected dead letters may be redriven, and why the others may not."""

    redrive: list[DeadLetter] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)


def plan_redrive(letters: Iterable[DeadLetter], max_redrives: int) -> RedrivePlan:
    plan = RedrivePlan()
    for letter in letters:
        count = letter.headers.faceguard_redrive_count
        if letter.record.value is None:
            plan.refused.append((letter, "no request value (a binary value was left out of the DLQ)"))
        elif letter.headers.faceguard_value_truncated:
            plan.refused.append((letter, f"the value was cut to fit ({letter.headers.faceguard_value_truncated})"))
        elif count >= max_redrives:
            plan.refused.append((letter, f"already redriven {count} times (limit {max_redrives})"))
        else:
            plan.redrive.append(letter)
    return plan


def redrive(
    client: ClientConfig, producer: ProducerOptions, plan: RedrivePlan, rate_per_s: float
) -> list[tuple[DeadLetter, str]]:
    """Republish the plan's requests at most `rate_per_s` a second; returns those the broker did not take."""
    errors = publish(client, producer, [redrive_record(letter) for letter in plan.redrive], rate_per_s)
    return [(letter, error) for letter, error in zip(plan.redrive, errors, strict=True) if error is not None]


def describe(letter: DeadLetter, as_json: bool) -> str:
    """One line for `dlq list`: position, time, class, origin, request id, reason (JSON: every header too)."""
    h = letter.headers
    if as_json:
        return json.dumps({"position": letter.position, **h.model_dump(by_alias=True, mode="json", exclude_none=True)})
    return "\t".join(
        [
            letter.position,
            h.faceguard_failed_at.isoformat(timespec="seconds"),
            h.faceguard_error_class.value,
            f"{h.faceguard_original_topic}[{h.faceguard_original_partition}]@{h.faceguard_original_offset}",
            h.faceguard_request_id or "-",
            f"attempts={h.faceguard_attempts} redrives={h.faceguard_redrive_count}",
            h.faceguard_error_reason,
        ]
    )
