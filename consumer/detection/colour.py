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
- `sat`: their mean HSV saturation in [0, 1]. A black-and-white photo has no
  skin colour anywhere, and this tells the model so.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from consumer.imaging.decode import to_rgb8
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
