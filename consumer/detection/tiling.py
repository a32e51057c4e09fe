"""Tile geometry: overlapping square windows that cover an image, and boxes mapped back."""

from __future__ import annotations

import math
from dataclasses import dataclass

from consumer.imaging.types import Box, Point


@dataclass(frozen=True)
class Window:
    """A square tile of a resized image: its top-left corner and side, in resized pixels; `swept`: laid by a
    guided pass's sweep (`consumer/detection/strategy.py`, `Sweep`), not at a hint."""

    x: int
    y: int
    side: int
    swept: bool = False


def tile_starts(length: int, side: int, overlap: float) -> list[int]:
    """Starts of windows of `side` covering [0, length), neighbours sharing `overlap` of a side.

    The last window ends at the border instead of hanging over it, so every window
    is a full tile (only an image shorter than one tile gets one, shorter, window).
    """
    if length <= side:
        return [0]
    stride = max(1, round(side * (1.0 - overlap)))
    starts = list(range(0, length - side, stride))
    starts.append(length - side)
    return starts


def windows(width: int, height: int, side: int, overlap: float) -> list[Window]:
    """Windows covering a `width` x `height` image, row by row."""
    return [Window(x, y, side) for y in tile_starts(height, side, overlap) for x in tile_starts(width, side, overlap)]


def holding(cuts: list[Window], points: list[Point], scale: float) -> list[Window]:
    """The windows of the image resized by `scale` that hold at least one of `points` (source pixels)."""
    scaled = [(p.x * scale, p.y * scale) for p in points]
    return [w for w in cuts if any(w.x <= x < w.x + w.side and w.y <= y < w.y + w.side for x, y in scaled)]


def to_source(box: Box, window: Window, scale: float, width: int, height: int) -> Box:
    """A box found in `window` of the image resized by `scale`, in the source image's pixels.

    Rounded outwards (when in doubt, mask) and clipped to the `width` x `height` source.
    """
    x0 = math.floor((box.x + window.x) / scale)
    y0 = math.floor((box.y + window.y) / scale)
    x1 = math.ceil((box.x + box.w + window.x) / scale)
    y1 = math.ceil((box.y + box.h + window.y) / scale)
    return Box(x0, y0, x1 - x0, y1 - y0).clipped(width, height)


def point_to_source(point: Point, window: Window, scale: float) -> Point:
    """A point found in `window` of the image resized by `scale`, in the source image's pixels."""
    return Point((point.x + window.x) / scale, (point.y + window.y) / scale)
