"""Typed values passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy.typing as npt

# uint8 or uint16; gray (H, W), BGR (H, W, 3) or BGRA (H, W, 4).
Pixels = npt.NDArray[Any]


class ImageFormat(StrEnum):
    """Image formats Faceguard reads and writes; the output keeps the input's format."""

    JPEG = "jpeg"
    PNG = "png"
    BMP = "bmp"
    WEBP = "webp"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"

    @property
    def extension(self) -> str:
        return ".jpg" if self is ImageFormat.JPEG else f".{self.value}"

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file-name suffixes (lower case) that name this format, its `extension` first."""
        return (".jpg", ".jpeg") if self is ImageFormat.JPEG else (self.extension,)


# File-name suffixes (lower case) of the formats Faceguard reads and writes.
IMAGE_SUFFIXES = frozenset(suffix for image_format in ImageFormat for suffix in image_format.suffixes)


@dataclass(frozen=True)
class DecodedImage:
    """Upright pixels (EXIF orientation applied) in OpenCV channel order, and the source format."""

    pixels: Pixels
    format: ImageFormat

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class Point:
    """A point in image pixels."""

    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in pixels: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    @property
    def centre(self) -> Point:
        return Point(self.x + self.w / 2, self.y + self.h / 2)

    def clipped(self, width: int, height: int) -> Box:
        """This box cut to an image of `width` x `height` (may become empty)."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def intersection_area(self, other: Box) -> int:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        return max(0, x1 - x0) * max(0, y1 - y0)

    def iou(self, other: Box) -> float:
        """Intersection over union of the two boxes (0 when either is empty)."""
        inter = self.intersection_area(other)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def grown(self, margin: float) -> Box:
        """This box with `margin` times its width and height added on every side."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        return Box(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)


@dataclass(frozen=True)
class Detection:
    """One face found by the detector."""

    box: Box
    score: float
    eyes: tuple[Point, Point] | None = None  # the subject's right eye, then the left, in the same pixels as `box`
    verification: float | None = None  # the verifier's probability that it is a face, once verified
    support: int = 1  # detections (of passes, overlapping tiles) merged into this one
