"""Which representation a client asked for in `Accept`: the masked image (in the input's format, or in one
it names) or the JSON metadata.

Without `Accept`, or with `*/*` or `image/*` preferred, the image comes back in
its own format (a lossless input stays lossless). `image/jpeg`, `image/png` or
`image/webp` preferred converts it; `application/json` preferred gives the JSON.
Quality values (`q=`) rank the choices; at equal quality a named type wins over a
range (`application/json, */*` asks for the JSON).
"""

from __future__ import annotations

from dataclasses import dataclass

from consumer.api.problems import Problem
from consumer.imaging.types import ImageFormat

JSON = "application/json"
NAMED_FORMATS = {f"image/{f.value}": f for f in (ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP)}


@dataclass(frozen=True)
class Wanted:
    """The representation to answer with: JSON, or an image in `format` (None: the input's)."""

    json: bool
    format: ImageFormat | None = None


def wanted(accept: str | None) -> Wanted:
    """The representation `accept` prefers. Raises Problem 406 when it accepts none we can give."""
    if not accept or not accept.strip():
        return Wanted(json=False)
    choices: list[tuple[tuple[float, int], Wanted]] = []
    for item in accept.split(","):
        media_type, quality = media_range(item)
        choice = choice_of(media_type)
        if choice is not None and quality > 0:
            named = choice.json or choice.format is not None  # a named type over a range at equal q
            choices.append(((quality, 2 if named else 1), choice))
    if not choices:
        raise Problem(
            406,
            "not_acceptable",
            "Not acceptable",
            f"this route answers {JSON}, image/jpeg, image/png, image/webp or the input's own image type",
        )
    return max(choices, key=lambda ranked: ranked[0])[1]  # the first listed at equal rank


def media_range(item: str) -> tuple[str, float]:
    """The media type of one `Accept` item and its quality (1.0 unless `q=` says otherwise; 0 when unreadable)."""
    media_type, *parameters = (part.strip() for part in item.split(";"))
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return media_type.lower(), quality


def choice_of(media_type: str) -> Wanted | None:
    if media_type == JSON:
        return Wanted(json=True)
    if media_type in NAMED_FORMATS:
        return Wanted(json=False, format=NAMED_FORMATS[media_type])
    if media_type in ("*/*", "image/*"):
        return Wanted(json=False)
    return None
