"""The request body of /process and /detect: read with the byte limit enforced while streaming, then the
image and the masking options taken from it.

The image comes as the multipart field `image` (as the original service takes it)
or as the whole body with an `image/*` (or `application/octet-stream`) content
type. Options come from query parameters and, for a form, its other fields.
A body over the limit is never held: past the limit its bytes are read and
dropped (so the client can read the 413 instead of a reset connection), up to
`DRAIN_LIMIT`; a declared length over the limit with `Expect: 100-continue` is
refused before a byte is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pydantic
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from consumer.api.problems import Problem
from consumer.detection.strategy import Preset
from schemas import MaskOptions

DRAIN_LIMIT = 64 * 1024 * 1024  # bytes past the limit read and dropped before the connection is closed instead
FORM_OVERHEAD = 64 * 1024  # a form's boundaries, part headers and option fields beside the image
OPTION_FIELDS = ("method", "strength", "margin", "shape", "min_face_probability")


@dataclass(frozen=True)
class Upload:
    """An image sent to the API, and what the request asked of it."""

    data: bytes
    mask: MaskOptions | None
    preset: Preset | None


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """The image and options of `request`. Raises Problem: 413 over `max_bytes`, 415 for a body that is neither
    a form nor an image, 400 for a form without an `image` file or options that break the contract."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, str] = dict(request.query_params)
    if media_type == "multipart/form-data":
        body = await read_limited(request, max_bytes + FORM_OVERHEAD)
        data, form_fields = await parse_form(request, body)
        if len(data) > max_bytes:
            raise too_large(max_bytes)
        fields.update(form_fields)
    elif media_type.startswith("image/") or media_type == "application/octet-stream":
        data = await read_limited(request, max_bytes)
    else:
        raise Problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            f"send the image as the multipart field 'image' or as the body with an image/* content type, "
            f"not {media_type or 'no content type'}",
        )
    if not data:
        raise Problem(400, "not_an_image", "Not an image", "the image is empty")
    return Upload(data, *request_options(fields))


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused (Problem 413) past `limit` bytes without holding more than that."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and request.headers.get("expect", "").lower() == "100-continue":
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            if size > limit + DRAIN_LIMIT:
                break
            continue  # read and dropped, so the client gets to read the answer
        chunks.append(chunk)
    if size > limit:
        raise too_large(limit)
    return b"".join(chunks)


def too_large(limit: int) -> Problem:
    return Problem(413, "image_too_large", "Image too large", f"the request body is over the limit of {limit} bytes")


async def parse_form(request: Request, body: bytes) -> tuple[bytes, dict[str, str]]:
    """The `image` file of a multipart body already read, and its other fields."""

    async def replay() -> Message:
        nonlocal body
        chunk, body = body, b""
        return {"type": "http.request", "body": chunk, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=1, max_fields=len(OPTION_FIELDS) + 1) as form:
            image = form.get("image")
            if not isinstance(image, UploadFile):
                raise Problem(400, "missing_image", "No image", "the form has no file field named 'image'")
            data = await image.read()
            fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    except Problem:
        raise
    except Exception as exc:  # Starlette's MultiPartException and the parser's own: a malformed form
        raise Problem(400, "invalid_form", "Malformed form", f"the multipart body cannot be read: {exc}") from exc
    return data, fields


def request_options(fields: Mapping[str, str]) -> tuple[MaskOptions | None, Preset | None]:
    """The masking options and preset a request asked for. Raises Problem 400 for values the contract refuses."""
    preset: Preset | None = None
    if (name := fields.get("preset")) is not None:
        try:
            preset = Preset(name)
        except ValueError:
            raise invalid_options(f"preset must be one of {', '.join(p.value for p in Preset)}, not {name!r}") from None
    wanted = {key: fields[key] for key in OPTION_FIELDS if fields.get(key) not in (None, "")}
    if not wanted:
        return None, preset
    try:
        return MaskOptions.model_validate(wanted), preset
    except pydantic.ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise invalid_options(reasons) from exc


def invalid_options(detail: str) -> Problem:
    return Problem(400, "invalid_options", "Invalid options", detail)
