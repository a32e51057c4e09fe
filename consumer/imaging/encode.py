"""Encode stage: pixels back into the input's format.

OpenCV writes pixel data only, so the output carries no EXIF, GPS or other
metadata of the input; the input's colour profile alone is written back into it
(`consumer/imaging/profile.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from consumer.imaging.decode import eight_bit
from consumer.imaging.profile import carried_profile, with_profile
from consumer.imaging.types import ImageFormat, Pixels


@dataclass(frozen=True)
class EncodeQuality:
    jpeg: int = 92
    webp: int = 90


def encode_image(
    pixels: Pixels, image_format: ImageFormat, quality: EncodeQuality, profile: bytes | None = None
) -> bytes:
    """`pixels` encoded as `image_format` (converted first where that format cannot hold them: 16-bit samples
    to 8 bits but in PNG, alpha dropped in JPEG), with the ICC `profile` of the input they were decoded from
    where it describes them. Raises RuntimeError if OpenCV cannot encode them (a bug)."""
    pixels = representable(pixels, image_format)
    params: list[int] = []
    if image_format is ImageFormat.JPEG:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality.jpeg]
    elif image_format is ImageFormat.WEBP:
        params = [cv2.IMWRITE_WEBP_QUALITY, quality.webp]
    elif image_format is ImageFormat.PNG:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buffer = cv2.imencode(image_format.extension, pixels, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} image as {image_format.value}")
    return with_profile(buffer.tobytes(), image_format, carried_profile(profile, pixels))


def representable(pixels: Pixels, image_format: ImageFormat) -> Pixels:
    """`pixels` as `image_format` can hold them: PNG keeps everything; the others take 8-bit samples, and JPEG
    gray or 3 channels. Unchanged when the format is the input's own (the decoder gave what it can hold)."""
    if image_format is not ImageFormat.PNG:
        pixels = eight_bit(pixels)
    if image_format is ImageFormat.JPEG and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return pixels
