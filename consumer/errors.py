"""Faceguard's errors. Each branch of the tree is an action the worker takes:

    FaceguardError
    ├── InvalidInput          -> dead-letter at once, commit, keep going (retrying cannot help)
    │   ├── InvalidRequest        bad JSON or a request that breaks the contract
    │   ├── UnsupportedReference  unknown scheme, userinfo in a URL, a file outside the allowed roots
    │   ├── ForbiddenAddress      a host resolving to a loopback, private, link-local or metadata
    │   │                         address, or a port outside the allowlist (SSRF guard)
    │   ├── SourceNotFound        missing file or object, HTTP 404/410, access denied
    │   ├── NotAnImage            bytes that are not a JPEG, PNG, BMP or WebP we can decode (or cut short)
    │   ├── UnsupportedImage      an image we read but do not mask: animated PNG or WebP
    │   └── ImageTooLarge         over the byte or pixel limit (pixels read from the header), or outputs
    │                             that would not fit in a record
    ├── ProcessingBug         -> our code raised on this record, or the worker died on it, attempt after
    │                            attempt: dead-letter it (processing_bug, with the exception type, or
    │                            WorkerDied), count it, keep going
    ├── TransientFailure      -> may pass later: retried after a growing delay, then dead-lettered
    │   ├── SourceUnavailable     fetch timeout, connection refused, HTTP 5xx/429, S3 throttling
    │   └── OutputStoreUnavailable  the masked image could not be written to the output store
    ├── SetupError            -> refuse to start (bad configuration, topics or brokers not usable)
    │   └── ModelFileError        a model file missing or not matching its pinned sha256
    ├── PublishError          -> stop the worker; uncommitted records are consumed again
    └── GroupChanged          -> the group moved on under this member: the transaction is aborted, the
                                 batch kept, and the consumer's next poll says which partitions remain

A transient failure goes to retry tier N after its Nth failure (`processing.retry`),
and after the last tier to the dead-letter topic with retryable=true, for redrive.
Anything else raised while processing a record is a bug: the record is tried again,
and after `MAX_BUG_ATTEMPTS` it becomes a `ProcessingBug` dead letter; so does a record
that killed the worker process that many times (crash marks, `consumer.engine.attempts`). The bug stays
loud (an error log with the traceback, `faceguard_processing_bugs_total`, an alert)
but one bad record never stops a partition or the worker.
Third-party errors are translated into these types once, where they are raised.
"""

from __future__ import annotations

from schemas import ErrorClass


class FaceguardError(Exception):
    """Root of every error Faceguard raises on purpose."""


class RecordFailure(FaceguardError):
    """One record cannot be processed; `error_class` is what the DLQ records."""

    error_class: ErrorClass
    retryable: bool = False


class InvalidInput(RecordFailure):
    """The record itself is at fault: dead-letter it, do not retry."""


class InvalidRequest(InvalidInput):
    error_class = ErrorClass.INVALID_REQUEST


class UnsupportedReference(InvalidInput):
    error_class = ErrorClass.UNSUPPORTED_REFERENCE


class ForbiddenAddress(InvalidInput):
    error_class = ErrorClass.FORBIDDEN_ADDRESS


class SourceNotFound(InvalidInput):
    error_class = ErrorClass.SOURCE_NOT_FOUND


class NotAnImage(InvalidInput):
    error_class = ErrorClass.NOT_AN_IMAGE


class UnsupportedImage(InvalidInput):
    error_class = ErrorClass.UNSUPPORTED_IMAGE


class ImageTooLarge(InvalidInput):
    error_class = ErrorClass.IMAGE_TOO_LARGE


class GroupChanged(FaceguardError):
    """Offsets were refused because this member's group generation is over (evicted, or rebalanced under it)."""


class ProcessingBug(RecordFailure):
    """Processing raised something that is not a RecordFailure, on every attempt: our bug, not the input's."""

    error_class = ErrorClass.PROCESSING_BUG


class WorkerDied(Exception):
    """Stands for what ended a worker process while it processed a record, found from crash marks."""

    def __init__(self) -> None:
        super().__init__("the worker process ended while processing it (killed, out of memory, or a native crash)")


class TransientFailure(RecordFailure):
    """The source may answer later: retried on the next tier, dead-lettered as retryable after the last."""

    retryable = True


class SourceUnavailable(TransientFailure):
    error_class = ErrorClass.SOURCE_UNAVAILABLE


class OutputStoreUnavailable(TransientFailure):
    error_class = ErrorClass.OUTPUT_STORE_UNAVAILABLE


class SetupError(FaceguardError):
    """The worker cannot start as configured; the message says what to fix."""


class ModelFileError(SetupError):
    """A model file is missing or does not match its pinned checksum."""


class PublishError(FaceguardError):
    """The broker did not acknowledge an output; the worker stops without committing it."""
