"""Errors of the HTTP API as RFC 9457 problem documents (`application/problem+json`).

Every error leaves through `problem_response`: our error tree (`consumer.errors`)
maps to a status and a typed reason once, here. A `Problem` raised by a route
carries its own. Anything else is a bug: 500, logged with its traceback, never
the exception's text (it may hold paths or image data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from starlette.responses import Response

from consumer.errors import (
    FaceguardError,
    ImageTooLarge,
    InvalidInput,
    NotAnImage,
    PublishError,
    SetupError,
    TransientFailure,
    UnsupportedImage,
)

PROBLEM_TYPE = "urn:faceguard:problem:"  # + the reason: a stable identifier a client can switch on
CONTENT_TYPE = "application/problem+json"


@dataclass
class Problem(Exception):
    """An error answered as a problem document: `reason` names its type."""

    status: int
    reason: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.detail}"


def problem_of(error: FaceguardError) -> Problem:
    """The problem our own error stands for."""
    detail = str(error)
    if isinstance(error, ImageTooLarge):
        return Problem(413, "image_too_large", "Image too large", detail)
    if isinstance(error, UnsupportedImage):
        return Problem(415, "unsupported_image", "Unsupported image type", detail)
    if isinstance(error, NotAnImage):
        return Problem(400, "not_an_image", "Not an image", detail)
    if isinstance(error, InvalidInput):
        return Problem(400, error.error_class.value, "Invalid request", detail)
    if isinstance(error, TransientFailure | PublishError | SetupError):
        return Problem(503, "unavailable", "Service unavailable", detail, {"Retry-After": "1"})
    return Problem(500, "internal_error", "Internal error", "the server failed on this request; it is logged")


def problem_response(problem: Problem, instance: str) -> Response:
    """The problem document for `problem` on the request at `instance` (its path)."""
    body = {
        "type": PROBLEM_TYPE + problem.reason,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "reason": problem.reason,
    }
    return Response(json.dumps(body), problem.status, headers=problem.headers, media_type=CONTENT_TYPE)
