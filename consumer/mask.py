"""Mask stage: make every detected face unrecognisable, in place.

Each face box is grown by a margin and clipped to the image; the region is then
blurred (Gaussian, kernel proportional to the region's size), pixelated, or
filled. Large blurs run on a downscaled copy of the region: the same look at a
bounded cost, and no finer detail survives than the small copy holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2

from consumer.image_types import Box, Detection, Pixels
from schemas import AppliedMask, MaskMethod, MaskOptions

# Blur kernels above this side run on a region scaled down to match.
MAX_DIRECT_KERNEL = 31


@dataclass(frozen=True)
class MaskSpec:
    """Fully resolved masking parameters for one request."""

    method: MaskMethod
    strength: float
    margin: float

    def with_overrides(self, options: MaskOptions | None) -> MaskSpec:
        """This spec with the request's own options, where it gives them."""
        if options is None:
            return self
        return MaskSpec(
            method=options.method or self.method,
            strength=options.strength if options.strength is not None else self.strength,
            margin=options.margin if options.margin is not None else self.margin,
        )


def mask_faces(pixels: Pixels, detections: list[Detection], spec: MaskSpec) -> list[AppliedMask]:
    """Mask every detection in `pixels` (modified in place); returns what was applied, in order."""
    height, width = pixels.shape[:2]
    applied = []
    for detection in detections:
        region = detection.box.grown(spec.margin).clipped(width, height)
        kernel = mask_region(pixels, region, spec)
        strength = 1.0 if spec.method is MaskMethod.FILL else spec.strength
        applied.append(AppliedMask(method=spec.method, strength=strength, region=region.as_tuple(), kernel_px=kernel))
    return applied


def mask_region(pixels: Pixels, region: Box, spec: MaskSpec) -> int:
    """Mask one region in place; returns the kernel or block side used (0 for fill)."""
    if region.w == 0 or region.h == 0:
        return 0
    view = pixels[region.y : region.y + region.h, region.x : region.x + region.w]
    long_side = max(region.w, region.h)
    if spec.method is MaskMethod.FILL:
        if view.ndim == 3 and view.shape[2] == 4:
            view[..., :3] = 0
        else:
            view[...] = 0
        return 0
    if spec.method is MaskMethod.PIXELATE:
        block = max(2, math.ceil(spec.strength * long_side / 4))
        small = cv2.resize(view, (max(1, region.w // block), max(1, region.h // block)), interpolation=cv2.INTER_AREA)
        view[...] = cv2.resize(small, (region.w, region.h), interpolation=cv2.INTER_NEAREST).reshape(view.shape)
        return block
    kernel = odd(max(3, round(spec.strength * long_side)))
    view[...] = blurred(view, kernel).reshape(view.shape)
    return kernel


def blurred(view: Pixels, kernel: int) -> Pixels:
    """`view` Gaussian-blurred with a `kernel`-sided kernel, via a downscaled copy when large."""
    if kernel <= MAX_DIRECT_KERNEL:
        return cv2.GaussianBlur(view, (kernel, kernel), 0, borderType=cv2.BORDER_REPLICATE)
    scale = kernel / MAX_DIRECT_KERNEL
    h, w = view.shape[:2]
    small = cv2.resize(view, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (MAX_DIRECT_KERNEL, MAX_DIRECT_KERNEL), 0, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def odd(n: int) -> int:
    return n if n % 2 else n + 1
