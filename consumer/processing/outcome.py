"""What became of one consumed record: its kind of outcome, and what to publish for it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.processing.pipeline import AnonymizedImage
from consumer.records import OutgoingRecord, Record
from schemas import ErrorClass

# What the circuit breaker counts: sources and the store failing, and our own bugs.
BREAKER_CLASSES = frozenset(
    {ErrorClass.SOURCE_UNAVAILABLE, ErrorClass.OUTPUT_STORE_UNAVAILABLE, ErrorClass.PROCESSING_BUG}
)


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
    def breaker_failure(self) -> bool:
        """A failure of ours or of a dependency (a source, the store), which the circuit breaker counts; the
        record's own faults (invalid input) never open it."""
        return self.error_class in BREAKER_CLASSES

    @property
    def failed(self) -> bool:
        return self.kind in (OutcomeKind.RETRIED, OutcomeKind.DEAD_LETTERED)
