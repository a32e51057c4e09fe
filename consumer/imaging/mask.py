"""Mask stage: make every detected face unrecognisable, in place.

Each face box is grown by a margin and clipped to the image; the region (or the
ellipse inside it) is then blurred (Gaussian, scale proportional to the region's
size), pixelated (blocks proportional to it), or filled. Large blurs run on a
downscaled copy of the region: the same look at a bounded cost, and no finer
detail survives than the small copy holds.

The defaults (blur at strength 1.0, margin 0.35, box) and the blur's sigma were
chosen by running MediaPipe at its most sensitive on masked WIDER FACE photos
(docs/masking.md): with them a blurred face is found less often than a solid
fill, and a pixelated one about as often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from consumer.imaging.types import Box, Detection, Pixels
from schemas import BLUR_SIGMA, AppliedMask, MaskMethod, MaskOptions, MaskShape

# Blur scales above this side run on a region scaled down to match: at a sigma of 0.4 of the scale, a copy this
# small holds all the blur leaves, and blurring it is cheaper.
MAX_DIRECT_KERNEL = 21
# The blur's Gaussian sigma as a share of its scale is the contract's BLUR_SIGMA (OpenCV's own sigma for a
# kernel side is about 0.15 of it). Measured on 638 masked regions: 0.15 left 19 faces for the sensitive
# detector, 0.3 left 7, 0.4 left 5; a solid fill, 8.


@dataclass(frozen=True)
class MaskSpec:
    """Fully resolved masking parameters for one request."""

    method: MaskMethod
    strength: float
    margin: float
    shape: MaskShape = MaskShape.BOX


@dataclass(frozen=True)
class MaskPolicy:
    """The worker's default mask, and how far a request's own options may move it.

    Unless `requests_may_weaken`, a request may change the method and ask for more
    strength or margin, but values below the defaults are raised to them and an
    ellipse is used only when it is the default: the operator, not whoever writes
    to the requests topic, decides the weakest mask the service applies.
    """

    defaults: MaskSpec
    requests_may_weaken: bool = False

    def resolve(self, options: MaskOptions | None) -> MaskSpec:
        base = self.defaults
        if options is None:
            return base
        strength = options.strength if options.strength is not None else base.strength
        margin = options.margin if options.margin is not None else base.margin
        shape = options.shape or base.shape
        if not self.requests_may_weaken:
            strength = max(strength, base.strength)
            margin = max(margin, base.margin)
            shape = base.shape if shape is MaskShape.ELLIPSE else shape
        return MaskSpec(options.method or base.method, strength, margin, shape)

    def min_face_probability(self, options: MaskOptions | None, default: float | None) -> float | None:
        """The verifier's probability from which a candidate is masked: the preset's `default` (None: the preset
        verifies nothing), or a request's lower one; a higher one only when requests may weaken masks."""
        wanted = None if options is None else options.min_face_probability
        if wanted is None or default is None:
            return default
        return wanted if self.requests_may_weaken else min(wanted, default)


def mask_faces(pixels: Pixels, detections: list[Detection], spec: MaskSpec) -> list[AppliedMask]:
    """Mask every detection in `pixels` (modified in place); returns what was applied, in order."""
    height, width = pixels.shape[:2]
    applied = planned_masks(detections, spec, width, height)
    for mask in applied:
        mask_region(pixels, Box(*mask.region), spec)
    return applied


def planned_masks(detections: list[Detection], spec: MaskSpec, width: int, height: int) -> list[AppliedMask]:
    """The masks `mask_faces` applies to `detections` in a `width` x `height` image, without applying them."""
    strength = 1.0 if spec.method is MaskMethod.FILL else spec.strength
    planned = []
    for detection in detections:
        region = detection.box.grown(spec.margin).clipped(width, height)
        kernel = mask_scale(region.w, region.h, spec) if region.w and region.h else 0
        planned.append(
            AppliedMask(
                method=spec.method, strength=strength, shape=spec.shape, region=region.as_tuple(), kernel_px=kernel
            )
        )
    return planned


def mask_scale(width: int, height: int, spec: MaskSpec) -> int:
    """The blur scale or pixel block side masking a `width` x `height` region uses (0 for fill)."""
    long_side = max(width, height)
    if spec.method is MaskMethod.FILL:
        return 0
    if spec.method is MaskMethod.PIXELATE:
        return max(2, math.ceil(spec.strength * long_side / 2))
    return odd(max(3, round(spec.strength * long_side)))


def mask_region(pixels: Pixels, region: Box, spec: MaskSpec) -> int:
    """Mask one region in place; returns the kernel or block side used (0 for fill)."""
    if region.w == 0 or region.h == 0:
        return 0
    view = pixels[region.y : region.y + region.h, region.x : region.x + region.w]
    masked, kernel = masked_copy(view, spec)
    if spec.shape is MaskShape.ELLIPSE:
        inside = ellipse(region.w, region.h)
        view[inside] = masked[inside]
    else:
        view[...] = masked
    return kernel


def masked_copy(view: Pixels, spec: MaskSpec) -> tuple[Pixels, int]:
    """`view` with every pixel masked, and the kernel or block side used (0 for fill)."""
    h, w = view.shape[:2]
    scale = mask_scale(w, h, spec)
    if spec.method is MaskMethod.FILL:
        filled = view.copy()
        if filled.ndim == 3 and filled.shape[2] == 4:
            filled[..., :3] = 0
        else:
            filled[...] = 0
        return filled, 0
    if spec.method is MaskMethod.PIXELATE:
        small = cv2.resize(view, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).reshape(view.shape), scale
    return blurred(view, scale).reshape(view.shape), scale


def ellipse(width: int, height: int) -> np.ndarray:
    """Boolean mask of the ellipse inscribed in a `width` x `height` box."""
    inside = np.zeros((height, width), np.uint8)
    center = ((width - 1) / 2, (height - 1) / 2)
    cv2.ellipse(inside, (center, (float(width), float(height)), 0.0), 1, thickness=-1)
    return inside.astype(bool)


def blurred(view: Pixels, kernel: int) -> Pixels:
    """`view` Gaussian-blurred at scale `kernel` (sigma BLUR_SIGMA of it, the kernel as wide as that
    Gaussian needs), via a downscaled copy when large."""
    if kernel <= MAX_DIRECT_KERNEL:
        return cv2.GaussianBlur(view, (0, 0), BLUR_SIGMA * kernel, borderType=cv2.BORDER_REPLICATE)
    scale = kernel / MAX_DIRECT_KERNEL
    h, w = view.shape[:2]
    small = cv2.resize(view, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), BLUR_SIGMA * MAX_DIRECT_KERNEL, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def odd(n: int) -> int:
    return n if n % 2 else n + 1
