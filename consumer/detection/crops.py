"""Crops and resized views of decoded pixels, as 8-bit RGB for the networks."""

from __future__ import annotations

import cv2
import numpy as np

from consumer.imaging.decode import to_rgb8
from consumer.imaging.types import Pixels


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def rgb_view(pixels: Pixels, scale: float) -> np.ndarray:
    """An 8-bit RGB copy of `pixels` resized by `scale`, converted in place when resizing made a copy anyway."""
    if scale == 1.0:
        return to_rgb8(pixels)
    size = scaled_size(pixels.shape[1], pixels.shape[0], scale)
    if scale < 1 and (1 / scale).is_integer() and min(size) > 1:
        # By a whole factor, given as such: OpenCV's area averaging then takes its fast path; given a target
        # size, it does not.
        resized = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    else:
        # Enlarging (the second look's crop around a face under 28 px): bicubic, which masked more faces than
        # bilinear (docs/detection.md).
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(pixels, size, interpolation=interpolation)
    if resized.dtype == np.uint8 and resized.ndim == 3 and resized.shape[2] == 3:
        return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=resized)
    return to_rgb8(resized)


def padded_square(pixels: Pixels, x0: int, y0: int, span: int) -> np.ndarray:
    """The `span` x `span` square of `pixels` from (`x0`, `y0`), black where it leaves the image."""
    height, width = pixels.shape[:2]
    square = np.zeros((span, span, *pixels.shape[2:]), pixels.dtype)
    left, top = max(0, x0), max(0, y0)
    right, bottom = min(width, x0 + span), min(height, y0 + span)
    square[top - y0 : bottom - y0, left - x0 : right - x0] = pixels[top:bottom, left:right]
    return square
