"""What became of one consumed record: its kind of outcome, and what to publish for it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.processing.pipeline import AnonymizedImage
from consumer.records import OutgoingRecord, Record
from schemas import ErrorClass


class OutcomeKind(StrEnum):
    MASKED = "masked"
    NO_FACES = "no_faces"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Outcome:
    """What became of one consumed record, and what to publish for it."""

    record: Record
    kind: OutcomeKind
    outputs: list[OutgoingRecord]
    error_class: ErrorClass | None = None
    result: AnonymizedImage | None = None  # when masked: what the pipeline did, for the metrics
    input_bytes: int = 0

    @property
    def failed(self) -> bool:
        return self.kind in (OutcomeKind.RETRIED, OutcomeKind.DEAD_LETTERED)
