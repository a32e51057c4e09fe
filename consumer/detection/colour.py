"""Colour around a candidate: how much of its middle is skin-coloured, and how saturated it is.

The detector and FaceMesh see shapes; a patch of water, a chrome tap handle or
black-on-white lettering can have a face's shape at 30 px, but not its colour.
Two cheap measures of the middle of a candidate's box (a square 0.6 times its
longer side, where a face's cheeks, nose and forehead are) feed the verifier's
model (`consumer/detection/verify.py`), which weighs them against everything else:

- `skin`: the share of those pixels in the classic YCrCb skin range (Cr 133 to
  180, Cb 77 to 130), which holds skin of every tone under ordinary light. On
  the held-out `wider-tune/` candidates: 0.90 for faces on average, 0.59 for the
  rest.
- `sat`: their mean HSV saturation in [0, 1].

A monochrome photo (black and white, or a toned print) has no colour to weigh:
the detector sees it through a skin-toned tint (`detector_view`) and the
verifier weighs it with stages of its own, without these two.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from consumer.imaging.decode import to_gray8, to_rgb8
from consumer.imaging.types import Box, Pixels

MIDDLE = 0.6  # the side of the square measured, in multiples of the box's longer side
CR_RANGE, CB_RANGE = (133, 180), (77, 130)


def colour_features(pixels: Pixels, box: Box) -> dict[str, float]:
    """`skin` and `sat` of the middle of `box` in `pixels` (both 0 when it lies outside the image)."""
    height, width = pixels.shape[:2]
    half = MIDDLE * max(box.w, box.h) / 2
    x0, y0 = max(0, math.floor(box.centre.x - half)), max(0, math.floor(box.centre.y - half))
    x1, y1 = min(width, math.ceil(box.centre.x + half)), min(height, math.ceil(box.centre.y + half))
    if x1 <= x0 or y1 <= y0:
        return {"skin": 0.0, "sat": 0.0}
    rgb = to_rgb8(pixels[y0:y1, x0:x1])
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    skin = (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1])
    saturation = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1]
    return {"skin": float(np.mean(skin)), "sat": float(np.mean(saturation)) / 255}


# A photo without colour (black and white, or a scan of one) starves BlazeFace, which learnt faces in colour: on
# grayscale copies of 60 `faces/` photos `balanced` proposed 35.0% of the faces against 63.5% in colour. Seen
# through a skin-toned tint it proposes 52.1%. The tint is the detector's view only; the output is masked as
# it came. B, G and R gains, measured against a sepia (0.75, 0.88, 1.0) and a lighter warm tone (0.62, 0.8, 1.0):
# 44.2% and 50.1%.
MONOCHROME_TINT = (0.55, 0.72, 0.95)
MONOCHROME_CHROMA = 6  # a photo is monochrome when 99.5% of its pixels are within this (Cr, Cb) of its tone
SAMPLE_PIXELS = 5_000  # the pixels looked at to decide (0.4 ms for a 1024-px photo)


def is_monochrome(pixels: Pixels) -> bool:
    """Whether `pixels` (gray, BGR or BGRA; 8 or 16 bit) is a monochrome photo: gray, or toned (sepia, a warm
    or cold print) so that its colour is a function of its brightness alone. Decided on a sample: a straight
    line fitted to Cr and to Cb against Y holds 99.5% of the sampled pixels within `MONOCHROME_CHROMA`. Of the
    1,243 photos of `../shared/data`, it holds for 16, all black and white or toned, and no colour photo."""
    if pixels.ndim == 2:
        return True
    height, width = pixels.shape[:2]
    step = max(1, math.isqrt(height * width // SAMPLE_PIXELS))
    sample = to_rgb8(np.ascontiguousarray(pixels[::step, ::step]))
    ycrcb = cv2.cvtColor(sample, cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.float64)
    brightness = np.stack([ycrcb[:, 0], np.ones(len(ycrcb))], axis=1)
    off_tone = np.zeros(len(ycrcb))
    for channel in (1, 2):
        line, *_ = np.linalg.lstsq(brightness, ycrcb[:, channel], rcond=None)
        off_tone = np.maximum(off_tone, np.abs(ycrcb[:, channel] - brightness @ line))
    return float(np.percentile(off_tone, 99.5)) <= MONOCHROME_CHROMA


def detector_view(pixels: Pixels) -> tuple[Pixels, bool]:
    """What the detector and the verifier look at, and whether the photo is monochrome: `pixels` as they are,
    or a monochrome photo's brightness (its tone, if any, dropped) tinted with `MONOCHROME_TINT` (8-bit BGR)."""
    if not is_monochrome(pixels):
        return pixels, False
    return cv2.LUT(cv2.cvtColor(to_gray8(pixels), cv2.COLOR_GRAY2BGR), _TINT_TABLE), True


_TINT_TABLE = np.clip(np.arange(256)[:, None] * np.array(MONOCHROME_TINT) + 0.5, 0, 255).astype(np.uint8)[:, None, :]
