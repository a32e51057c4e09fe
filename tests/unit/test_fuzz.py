"""Property-based tests (hypothesis) of everything that reads untrusted bytes before the pipeline: request
parsing, reference checks, header decoding and image-header inspection. Whatever the input, the answer is a
result or one of our typed errors, never another exception.

The suite runs a bounded number of examples per property (FACEGUARD_FUZZ_EXAMPLES, default 200);
`ops/fuzz.py` runs the same properties far longer.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.config import Settings
from consumer.errors import InvalidInput, InvalidRequest, UnsupportedReference
from consumer.imaging.decode import inspect_image
from consumer.processing.outputs import FailedRecord, dead_letter_record
from consumer.processing.request import RequestLimits, parse_request
from consumer.processing.retry import History, history_of, not_before
from consumer.processing.trace import child_of
from consumer.records import Record, from_headers
from consumer.sources.address_policy import AddressPolicy
from consumer.sources.files import local_path
from consumer.sources.references import check_reference
from consumer.sources.s3 import parse_s3_uri
from schemas import DeadLetterHeaders, ImageRequest

FUZZ = settings(
    max_examples=int(os.environ.get("FACEGUARD_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = RequestLimits()
OUTPUTS = Settings(max_request_bytes=LIMITS.max_value_bytes).output_options
RETRY_TOPICS = ["faceguard.requests.retry-1", "faceguard.requests.retry-2"]

# Any JSON value: deep, wide, long strings, large and odd numbers.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**60, max_value=10**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=12), children, max_size=8),
    max_leaves=60,
)
references = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda s, rest: f"{s}://{rest}", st.sampled_from(["file", "http", "https", "s3", "ftp", "S3"]), st.text()
    ),
    st.builds(
        lambda host, port, path: f"http://{host}:{port}/{path}",
        st.text(max_size=80),
        st.integers(min_value=-5, max_value=70_000).map(str) | st.text(max_size=6),
        st.text(max_size=40),
    ),
)


# Raw JSON-like text from fragments that have broken parsers: lone surrogate escapes, numbers past any
# digit limit, NaN, control bytes, unbalanced brackets, and the contract's own names.
FRAGMENTS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    "\\ud800",
    "\\udfff",
    "\\u0000",
    "1" * 5000,
    "-0.5e999",
    "NaN",
    "Infinity",
    "null",
    "true",
    '"request_id"',
    '"image_ref"',
    '"attributes"',
    '"mask"',
    '"r-1"',
    '"file:///x.png"',
    '"http://a\\u0000b/"',
    "\x00",
    "\x7f",
    "\u00e9",
    " ",
]
json_texts = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)


def encoded(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


def as_record(value: bytes | None, key: bytes | None = b"k", headers: list[tuple[str, bytes]] | None = None) -> Record:
    return Record("faceguard.requests.retry-1", 0, 7, key, value, 1_700_000_000_000, headers or [])


def parsed_or_invalid(value: bytes, key: bytes | None = b"k") -> ImageRequest | None:
    try:
        return parse_request(as_record(value, key), LIMITS)
    except InvalidRequest as exc:
        reason = str(exc)
    assert reason  # a readable reason
    return None


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_are_a_request_or_invalid(value: bytes) -> None:
    parsed_or_invalid(value)


@FUZZ
@given(json_values)
def test_any_json_is_a_request_or_invalid(payload: Any) -> None:
    parsed_or_invalid(json.dumps(payload).encode())


@FUZZ
@given(json_texts)
def test_any_json_like_text_is_a_request_or_invalid(text: str) -> None:
    parsed_or_invalid(encoded(text))


@FUZZ
@given(st.dictionaries(st.text(max_size=20), json_values, max_size=6), references)
def test_requests_with_any_attributes_and_reference_parse_or_are_invalid(attributes: Any, ref: str) -> None:
    value = json.dumps({"request_id": "r-1", "image_ref": ref, "attributes": attributes}).encode()
    request = parsed_or_invalid(value)
    if request is not None:  # what parsed writes out again as UTF-8 JSON within the limits
        assert len(request.model_dump_json().encode()) <= 2 * LIMITS.max_value_bytes


@FUZZ
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
def test_nesting_of_any_depth_is_bounded(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    parsed_or_invalid((opener * depth + "1" + closer * depth).encode())


@FUZZ
@given(references)
def test_any_reference_is_well_formed_or_unsupported(ref: str) -> None:
    try:
        check_reference(ref)
    except UnsupportedReference:
        return
    # What passed the check, the sources' own parsers take without a library error.
    scheme = urlsplit(ref).scheme.lower()
    if scheme == "s3":
        parse_s3_uri(ref)
    elif scheme == "file":
        with contextlib.suppress(UnsupportedReference):
            local_path(ref, ())
    else:
        with contextlib.suppress(InvalidInput):
            AddressPolicy().check_url(urlsplit(ref))
        with contextlib.suppress(httpx.InvalidURL):
            httpx.URL(ref)


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=200)), max_size=12))
def test_any_headers_decode_to_a_history_or_none(headers: list[tuple[str, bytes]]) -> None:
    record = as_record(b"{}", headers=headers)
    history_of(record, RETRY_TOPICS)
    not_before(record)
    child_of(headers)
    with contextlib.suppress(ValueError):  # pydantic's ValidationError: dlq list skips such a record
        from_headers(DeadLetterHeaders, headers)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF"]))
def test_any_image_bytes_are_inspected_or_refused(data: bytes, magic: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        inspect_image(magic + data, 100_000_000)


@FUZZ
@given(
    st.one_of(st.binary(max_size=4096), json_texts.map(lambda t: t.encode("utf-8", "surrogatepass"))),
    st.binary(max_size=3000),
)
def test_any_record_can_be_dead_lettered_within_the_limits(value: bytes, key: bytes) -> None:
    """Whatever made a record fail, its dead letter is built, and fits: it is the last place it can go."""
    history = History("faceguard.requests", 0, 7, 0)
    letter = dead_letter_record(OUTPUTS, FailedRecord(as_record(value, key), InvalidRequest("x"), history))
    assert len(letter.value or b"") <= LIMITS.max_value_bytes
    assert len(letter.key or b"") <= LIMITS.max_key_bytes
