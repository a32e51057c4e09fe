"""Views of an image mirrored or turned a quarter, and boxes found in them mapped back."""

from __future__ import annotations

from enum import StrEnum

import cv2
import numpy as np

from consumer.imaging.types import Box, Point


class Turn(StrEnum):
    NONE = "none"
    MIRROR = "mirror"  # flipped left to right
    CW = "cw"  # a quarter turn clockwise
    CCW = "ccw"  # a quarter turn anticlockwise


def turned(rgb: np.ndarray, turn: Turn) -> np.ndarray:
    """`rgb` mirrored or turned, as a contiguous array."""
    if turn is Turn.MIRROR:
        return np.ascontiguousarray(rgb[:, ::-1])
    if turn is Turn.CW:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    if turn is Turn.CCW:
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return rgb


def unturned(box: Box, turn: Turn, width: int, height: int) -> Box:
    """A box found in a `width` x `height` image after `turn`, in the image before it."""
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    if turn is Turn.MIRROR:
        x0, x1 = width - x1, width - x0
    elif turn is Turn.CW:  # a turned pixel (x', y') was (y', height - 1 - x')
        x0, y0, x1, y1 = y0, height - x1, y1, height - x0
    elif turn is Turn.CCW:  # a turned pixel (x', y') was (width - 1 - y', x')
        x0, y0, x1, y1 = width - y1, x0, width - y0, x1
    return Box(x0, y0, x1 - x0, y1 - y0)


def unturned_eyes(eyes: tuple[Point, Point], turn: Turn, width: int, height: int) -> tuple[Point, Point]:
    """The eyes (the subject's right, then left) found in a `width` x `height` image after `turn`, in the
    image before it. A mirror swaps them: the right eye of a mirrored face is the subject's left."""
    right, left = (_unturned_point(p, turn, width, height) for p in eyes)
    return (left, right) if turn is Turn.MIRROR else (right, left)


def _unturned_point(point: Point, turn: Turn, width: int, height: int) -> Point:
    if turn is Turn.MIRROR:
        return Point(width - point.x, point.y)
    if turn is Turn.CW:
        return Point(point.y, height - point.x)
    if turn is Turn.CCW:
        return Point(width - point.y, point.x)
    return point
