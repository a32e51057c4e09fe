"""A preview of what the detector does: each candidate drawn on the image instead of masked.

Kept faces are drawn green, candidates the verifier rejected red, each labelled
with the detector's score and the verifier's probability, for a person to review
(`faceguard anonymize --preview`), as the service this project grew from drew its
green boxes.
"""

from __future__ import annotations

import cv2
import numpy as np

from consumer.imaging.types import Detection, Pixels

KEPT = (0, 200, 0)  # BGR
REJECTED = (0, 0, 230)


def draw_detections(pixels: Pixels, reviewed: list[tuple[Detection, bool]]) -> None:
    """Draw every detection on `pixels` (modified in place): green when kept as a face, red when rejected."""
    height, width = pixels.shape[:2]
    thickness = max(1, round(max(width, height) / 600))
    font = max(0.4, max(width, height) / 1600)
    for detection, kept in reviewed:
        color = _color(pixels, KEPT if kept else REJECTED)
        box = detection.box
        cv2.rectangle(pixels, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), color, thickness)
        label = f"{detection.score:.2f}" + ("" if detection.verification is None else f" p{detection.verification:.2f}")
        origin = (box.x, max(box.y - 2 * thickness, int(12 * font)))
        cv2.putText(pixels, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font, color, thickness, cv2.LINE_AA)


def _color(pixels: Pixels, bgr: tuple[int, int, int]) -> tuple[int, ...] | int:
    """`bgr` in the layout of `pixels`: gray, BGR or BGRA, 8 or 16 bit."""
    scale = 257 if pixels.dtype == np.uint16 else 1
    if pixels.ndim == 2:
        return round(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2]) * scale
    channels = [c * scale for c in bgr]
    return (*channels, 255 * scale) if pixels.shape[2] == 4 else tuple(channels)
