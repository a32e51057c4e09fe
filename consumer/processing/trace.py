"""W3C trace context: the `traceparent` of a request is carried on to its outputs.

Each processed record is a span of its own: its outputs carry the request's trace
id with a new span id, so a tracing backend links request, masked image,
metadata, retry and dead-letter records. A request without a valid
`traceparent` starts a new trace.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from consumer.records import Headers, OutgoingRecord

HEADER = "traceparent"
PATTERN = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def child_of(headers: Headers) -> TraceContext:
    """A new span under the request's trace, or the root of a new trace."""
    for name, value in headers:
        if name.lower() == HEADER and value is not None:
            match = PATTERN.match(value.decode("ascii", "replace").strip().lower())
            if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
                return TraceContext(match.group(1), secrets.token_hex(8), match.group(3))
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def traced(records: list[OutgoingRecord], context: TraceContext) -> list[OutgoingRecord]:
    """`records` with the span's `traceparent` header (replacing any they had)."""
    value = context.traceparent.encode()
    return [
        OutgoingRecord(
            r.topic, r.key, r.value, [(n, v) for n, v in r.headers if n.lower() != HEADER] + [(HEADER, value)]
        )
        for r in records
    ]
