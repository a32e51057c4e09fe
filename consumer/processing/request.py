"""A request record's value in, an `ImageRequest` out, or `InvalidRequest` with a readable reason.

Whatever a producer writes, parsing is bounded before and while it runs: the
record's size and its key's, the JSON nesting depth (checked before parsing, so
a value nested 100,000 deep never reaches the recursive parser), the digits of
a number, UTF-8 text without lone surrogates, and then the contract itself.
Anything outside the bounds is the record's fault: `InvalidRequest`, never
another exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from consumer.errors import InvalidRequest
from consumer.processing.envelope import request_value
from consumer.records import Record
from schemas import ImageRequest

# Strings (skipped whole, escapes included) and the brackets outside them.
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class RequestLimits:
    """How large a request may be. Outputs copy its key, value and attributes, so these keep them in bounds."""

    max_value_bytes: int = 64 * 1024
    max_key_bytes: int = 1024
    max_depth: int = 32  # nesting of objects and arrays, the request's own two levels included
    max_number_chars: int = 64


def parse_request(record: Record, limits: RequestLimits) -> ImageRequest:
    """The request in `record`'s value (or in the CloudEvent it is: `envelope.request_value`). Raises
    InvalidRequest with a readable reason, and nothing else."""
    if record.key is not None and len(record.key) > limits.max_key_bytes:
        raise InvalidRequest(f"the key has {len(record.key)} bytes, over the limit of {limits.max_key_bytes}")
    check_bounds(record.value, limits)  # before the envelope is read: a CloudEvent is JSON too
    value, default_id = request_value(record)
    return parse_request_value(value, limits, default_id)


def check_bounds(value: bytes | None, limits: RequestLimits) -> None:
    if not value:
        raise InvalidRequest("the record has no value; expected an ImageRequest JSON object")
    if len(value) > limits.max_value_bytes:
        raise InvalidRequest(f"the value has {len(value)} bytes, over the limit of {limits.max_value_bytes}")
    check_depth(value, limits.max_depth)


def parse_request_value(value: bytes | None, limits: RequestLimits, default_id: str | None = None) -> ImageRequest:
    """The request in a record's `value` (or an HTTP body); `default_id` is the id of one that names none.
    Raises InvalidRequest with a readable reason."""
    check_bounds(value, limits)
    assert value is not None  # check_bounds refused an empty one
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the value is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    payload = load_json(text, limits.max_number_chars)
    check_strings(payload)
    if default_id and isinstance(payload, dict) and "request_id" not in payload:
        payload["request_id"] = default_id
    try:
        return ImageRequest.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"the request breaks the ImageRequest contract: {problems}") from exc


def check_depth(value: bytes, max_depth: int) -> None:
    """Raise InvalidRequest when objects and arrays nest deeper than `max_depth` (malformed JSON passes here;
    the parser reports it)."""
    depth = 0
    for match in _STRUCTURE.finditer(value):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > max_depth:
                raise InvalidRequest(f"the value nests deeper than {max_depth} levels")
        elif token in (b"}", b"]"):
            depth -= 1


def load_json(text: str, max_number_chars: int) -> object:
    def number(literal: str, convert: type[int] | type[float]) -> int | float:
        if len(literal) > max_number_chars:
            raise InvalidRequest(f"a number has {len(literal)} characters, over the limit of {max_number_chars}")
        return convert(literal)

    def constant(name: str) -> object:
        raise InvalidRequest(f"{name} is not JSON")

    try:
        return json.loads(
            text,
            parse_int=lambda s: number(s, int),
            parse_float=lambda s: number(s, float),
            parse_constant=constant,
        )
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the value is not JSON: {exc}") from exc


def check_strings(payload: object) -> None:
    """Raise InvalidRequest for a string or key holding a lone surrogate (a `\\ud800` escape): it cannot be
    written out as UTF-8 again. The depth is already bounded, so the walk is too."""
    pending = [payload]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidRequest("a string holds a lone surrogate escape (not Unicode text)") from exc
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
