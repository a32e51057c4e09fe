"""One bad record never stops a partition: bounded requests, references checked whole, outputs that fit in a
record, a breaker that only counts our and our dependencies' failures, and bugs dead-lettered after retries."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from consumer.config import Settings
from consumer.engine.attempts import MAX_BUG_ATTEMPTS, Attempts, key_of
from consumer.engine.pool import Crash, ProcessingPool
from consumer.engine.service import record_processor
from consumer.errors import ImageTooLarge, InvalidRequest, UnsupportedReference
from consumer.imaging.pixel_budget import PixelBudget
from consumer.imaging.types import ImageFormat
from consumer.observability.health import Health
from consumer.processing.outcome import Outcome, OutcomeKind
from consumer.processing.outputs import FailedRecord, dead_letter_record, success_records
from consumer.processing.pipeline import AnonymizedImage
from consumer.processing.processor import RecordProcessor
from consumer.processing.request import RequestLimits, parse_request
from consumer.processing.retry import History
from consumer.processing.spans import ContextOnly
from consumer.records import Record
from consumer.sources.references import check_reference
from schemas import ErrorClass, FaceMetadataEvent, MaskOptions, StageTimings
from tests.support import REPO

SAMPLES = REPO / "samples"
LIMITS = RequestLimits()
SETTINGS = Settings(worker_id="w-1", group_id="g", allowed_roots=[SAMPLES])


def record(value: bytes | None, key: bytes | None = b"r-1", offset: int = 41) -> Record:
    return Record("faceguard.requests", 2, offset, key, value, 1_700_000_000_000, [])


def request(image_ref: str = "file:///x.png", attributes: str = "{}") -> bytes:
    return f'{{"request_id": "r-1", "image_ref": "{image_ref}", "attributes": {attributes}}}'.encode()


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        (request(attributes='{"blob": "' + "x" * (10 * 1024 * 1024) + '"}'), b"k", "over the limit of 65536"),
        (request(image_ref="http://a/" + "x" * (10 * 1024 * 1024)), b"k", "over the limit of 65536"),
        (b"[" * 100_000 + b"]" * 100_000, b"k", "over the limit"),
        (b"[" * 30_000 + b"]" * 30_000, b"k", "nests deeper than 32"),
        (request(attributes='{"n": ' + "9" * 5000 + "}"), b"k", "a number has 5000 characters"),
        (request(attributes='{"s": "\\ud800"}'), b"k", "lone surrogate"),
        (
            request(attributes='{"s": "\xff"}'.encode("latin-1").decode("latin-1")).replace(b"\xc3\xbf", b"\xff"),
            b"k",
            "not UTF-8",
        ),
        (request(attributes='{"n": NaN}'), b"k", "NaN is not JSON"),
        (request(), b"k" * 2000, "the key has 2000 bytes"),
    ],
    ids=[
        "10MB-attribute",
        "10MB-reference",
        "nested-100000",
        "nested-30000",
        "huge-integer",
        "surrogate",
        "not-utf8",
        "nan",
        "huge-key",
    ],
)
def test_requests_outside_the_bounds_are_invalid_with_the_reason(value: bytes, key: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(record(value, key), LIMITS)


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("file:///srv/images/a\x00b.jpg", "U\\+0000"),
        ("file:///srv/images/a%00b.jpg", "U\\+0000"),
        ("file:///srv/images/a\x1bb.jpg", "U\\+001B"),
        ("file:///srv/images/%ff.jpg", "not UTF-8"),
        ("http://exa mple.com/a.jpg", "cannot"),
        ("http://" + "a" * 64 + ".example/a.jpg", "not a valid domain name"),
        ("http://" + "a." * 130 + "example/a.jpg", "not a valid domain name"),
        ("http://exa..mple.com/a.jpg", "not a valid domain name"),
        ("http://exa_mple%.com/a.jpg", "cannot"),
        ("http://[::1/a.jpg", "not a URL"),
        ("http://example.com:99999/a.jpg", "invalid port"),
        ("http://example.com:http/a.jpg", "invalid port"),
        ("https:///a.jpg", "no host"),
        ("s3://b/key", "not a valid S3 bucket"),
        ("s3://bucket/", "an S3 key"),
        ("gopher://example.com/", "not supported"),
        ("file:///a\udcff.jpg", "U\\+DCFF"),
    ],
)
def test_malformed_references_are_unsupported_with_the_reason(ref: str, reason: str) -> None:
    with pytest.raises(UnsupportedReference, match=reason):
        check_reference(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "file:///srv/images/a b%20c.jpg".replace(" ", "%20"),
        "https://bücher.example/a.jpg",
        "http://[::1]:8080/a",
        "s3://Legacy_Bucket/a/b c?x",
        "http://127.0.0.1/a.jpg",
    ],
)
def test_well_formed_references_pass(ref: str) -> None:
    check_reference(ref)


def test_a_dead_letter_fits_in_a_record_whatever_the_request_was() -> None:
    value, key = request(attributes='{"blob": "' + "x" * (10 * 1024 * 1024) + '"}'), b"k" * (5 * 1024 * 1024)
    history = History("faceguard.requests", 2, 41, 0)
    out = dead_letter_record(SETTINGS.output_options, FailedRecord(record(value, key), InvalidRequest("big"), history))
    headers = {name: v.decode() for name, v in out.headers}
    assert out.value == value[: LIMITS.max_value_bytes]
    assert headers["faceguard-value-truncated"] == (
        f"kept {LIMITS.max_value_bytes} of {len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()}"
    )
    assert out.key == hashlib.sha256(key).hexdigest().encode()
    assert headers["faceguard-original-key"].endswith(f"({len(key)} bytes, sha256 {out.key.decode()})")
    assert headers["faceguard-error-reason"] == "big"
    size = len(out.value or b"") + len(out.key or b"") + sum(len(n) + len(v) for n, v in out.headers)
    assert size < SETTINGS.max_record_bytes


def test_a_metadata_event_over_the_record_limit_is_refused() -> None:
    timings = StageTimings(fetch_ms=0, decode_ms=0, detect_ms=0, mask_ms=0, encode_ms=0)
    result = AnonymizedImage(ImageFormat.PNG, 10, 10, [], timings, "0" * 64, data=b"img", output_sha256="0" * 64)
    event = FaceMetadataEvent.model_validate(_event_fields(faces=0))
    small = Settings(inline_max_bytes=1024).output_options
    fitting = success_records(small, result, event)
    assert len(fitting) == 2
    crowded = FaceMetadataEvent.model_validate(_event_fields(faces=4000))
    with pytest.raises(ImageTooLarge, match="the metadata event of 4000 faces has"):
        success_records(small, result, crowded)


def _event_fields(faces: int) -> dict[str, object]:
    face = {
        "bbox": [1, 2, 3, 4],
        "confidence": 0.9,
        "mask": {"method": "blur", "strength": 1.0, "region": [0, 0, 5, 5], "kernel_px": 5},
    }
    return {
        "request_id": "r-1",
        "source_ref": "file:///x.png",
        "image": {"width": 10, "height": 10, "format": "png", "content_type": "image/png"},
        "faces": [face] * faces,
        "total_count": faces,
        "processing_time_ms": 1.0,
        "timings": {"fetch_ms": 0, "decode_ms": 0, "detect_ms": 0, "mask_ms": 0, "encode_ms": 0},
        "model": {"name": "m", "version": "v", "min_confidence": 0.5, "preset": "fast", "passes": []},
        "input_sha256": "0" * 64,
        "output_sha256": "0" * 64,
        "output_bytes": 3,
        "worker_id": "w-1",
        "processed_at": "2026-12-06T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("error_class", "counts"),
    [
        (ErrorClass.INVALID_REQUEST, False),
        (ErrorClass.UNSUPPORTED_REFERENCE, False),
        (ErrorClass.SOURCE_NOT_FOUND, False),
        (ErrorClass.NOT_AN_IMAGE, False),
        (ErrorClass.IMAGE_TOO_LARGE, False),
        (ErrorClass.SOURCE_UNAVAILABLE, True),
        (ErrorClass.OUTPUT_STORE_UNAVAILABLE, True),
        (ErrorClass.PROCESSING_BUG, True),
        (None, False),
    ],
)
def test_the_breaker_counts_only_failures_of_ours_or_of_a_dependency(
    error_class: ErrorClass | None, counts: bool
) -> None:
    kind = OutcomeKind.MASKED if error_class is None else OutcomeKind.DEAD_LETTERED
    assert Outcome(record(b"{}"), kind, [], error_class).breaker_failure is counts


class BuggyOn:
    """Makes a real processor's anonymizer raise on one record's image: a bug, not the record's fault."""

    def __init__(self, processor: RecordProcessor, poisoned: str) -> None:
        anonymize = processor._anonymizer.anonymize
        self.poisoned = poisoned

        def buggy(
            data: bytes, options: MaskOptions | None, fetch_ms: float = 0.0, output_format: ImageFormat | None = None
        ) -> AnonymizedImage:
            if data == Path(poisoned).read_bytes():
                raise KeyError("a bug of ours")
            return anonymize(data, options, fetch_ms, output_format)

        processor._anonymizer.anonymize = buggy  # type: ignore[method-assign]


def test_a_record_that_crashes_every_time_is_dead_lettered_as_a_bug_and_the_rest_go_on() -> None:
    poisoned = SAMPLES / "coffee.png"

    def make() -> RecordProcessor:
        processor = record_processor(SETTINGS, ContextOnly(), PixelBudget(SETTINGS.max_pixels_in_flight))
        BuggyOn(processor, str(poisoned))
        return processor

    pool = ProcessingPool(make, 1, Health(60, 300), Attempts())
    pool.start()
    try:
        bad = record(request(image_ref=poisoned.as_uri()), offset=7)
        good = record(request(image_ref=(SAMPLES / "astronaut.png").as_uri()), offset=8)
        completions = []
        for _attempt in range(MAX_BUG_ATTEMPTS):
            pool.submit(bad)
            completions += pool.completions(60)
        pool.submit(good)
        completions += pool.completions(60)
    finally:
        pool.close(10)
    crashes, outcomes = completions[: MAX_BUG_ATTEMPTS - 1], completions[MAX_BUG_ATTEMPTS - 1 :]
    assert [type(c) for c in crashes] == [Crash] * (MAX_BUG_ATTEMPTS - 1)
    assert [c.attempts for c in crashes if isinstance(c, Crash)] == list(range(1, MAX_BUG_ATTEMPTS))
    letter, masked = outcomes
    assert isinstance(letter, Outcome)
    assert isinstance(masked, Outcome)
    assert (letter.kind, letter.error_class, letter.breaker_failure) == (
        OutcomeKind.DEAD_LETTERED,
        ErrorClass.PROCESSING_BUG,
        True,
    )
    headers = {name: v.decode() for name, v in letter.outputs[0].headers}
    assert headers["faceguard-error-class"] == "processing_bug"
    assert headers["faceguard-error-reason"] == f"KeyError on each of {MAX_BUG_ATTEMPTS} attempts: 'a bug of ours'"
    assert letter.outputs[0].topic == SETTINGS.topic_dlq
    assert masked.kind is OutcomeKind.MASKED


def test_a_record_charged_with_every_attempt_by_crash_marks_is_dead_lettered_without_processing() -> None:
    processed: list[Record] = []

    def make() -> RecordProcessor:
        processor = record_processor(SETTINGS, ContextOnly(), PixelBudget(SETTINGS.max_pixels_in_flight))
        process = processor.process

        def watched(r: Record) -> Outcome:
            processed.append(r)
            return process(r)

        processor.process = watched  # type: ignore[method-assign,assignment]
        return processor

    attempts = Attempts()
    deadly = record(request(image_ref=(SAMPLES / "astronaut.png").as_uri()), offset=7)
    attempts.charge(key_of(deadly), MAX_BUG_ATTEMPTS)  # as read from a crash mark
    pool = ProcessingPool(make, 1, Health(60, 300), attempts)
    pool.start()
    try:
        pool.submit(deadly)
        (letter,) = pool.completions(60)
    finally:
        pool.close(10)
    assert processed == []
    assert isinstance(letter, Outcome)
    headers = {name: v.decode() for name, v in letter.outputs[0].headers}
    assert headers["faceguard-error-class"] == "processing_bug"
    assert headers["faceguard-error-reason"].startswith(f"WorkerDied on each of {MAX_BUG_ATTEMPTS} attempts")
    assert attempts.count(key_of(deadly)) == 0  # dead-lettered: forgotten
