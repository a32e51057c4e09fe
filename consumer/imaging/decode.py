"""Decode stage: image bytes in, upright pixels out.

The format is sniffed from the bytes, never taken from a name or header. JPEGs
are decoded with EXIF orientation applied, so that pixels, boxes and the output
are all upright; other formats keep their channels (alpha, 16-bit) as stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from consumer.errors import ImageTooLarge, NotAnImage, UnsupportedImage
from consumer.imaging.header import read_header
from consumer.imaging.types import DecodedImage, ImageFormat, Pixels
from consumer.native_stderr import native_stderr_silenced


def sniff_format(data: bytes) -> ImageFormat:
    """The format of `data` from its magic bytes; raises NotAnImage for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return ImageFormat.JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ImageFormat.PNG
    if data[:2] == b"BM":
        return ImageFormat.BMP
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if other := other_image_type(data):
        raise UnsupportedImage(f"{other} images are not supported: send a JPEG, PNG, BMP or WebP image")
    raise NotAnImage(f"the {len(data)} bytes are not a JPEG, PNG, BMP or WebP image")


def other_image_type(data: bytes) -> str | None:
    """The name of an image format we recognise but do not read (by its magic bytes), or None."""
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif", b"avis"):
        return "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIC"
    if data[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    return None


@dataclass(frozen=True)
class InspectedImage:
    """What the bytes say before decoding: the format and the size."""

    format: ImageFormat
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def inspect_image(data: bytes, max_pixels: int) -> InspectedImage:
    """The format and size of `data`, read from its header without decoding it.

    Raises NotAnImage (not an image, header cut short), UnsupportedImage for an
    animation (masking only its first frame would publish a different image), and
    ImageTooLarge past `max_pixels`.
    """
    image_format = sniff_format(data)
    header = read_header(data, image_format)
    if header.width * header.height > max_pixels:
        raise ImageTooLarge(f"{header.width}x{header.height} pixels is more than the limit of {max_pixels}")
    if header.animated:
        raise UnsupportedImage(f"animated {image_format.value} images are not supported")
    return InspectedImage(image_format, header.width, header.height)


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode `data`, after `inspect_image` (whose errors it raises) allowed it."""
    return decode_inspected(data, inspect_image(data, max_pixels))


def decode_inspected(data: bytes, inspected: InspectedImage) -> DecodedImage:
    """Decode `data`, which `inspect_image` allowed. Raises NotAnImage when it is corrupt or cut short."""
    # IMREAD_COLOR applies EXIF orientation; IMREAD_UNCHANGED keeps alpha and depth.
    flags = cv2.IMREAD_COLOR if inspected.format is ImageFormat.JPEG else cv2.IMREAD_UNCHANGED
    with native_stderr_silenced():  # libpng's warnings about odd chunks must not reach the JSON log
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if pixels is None or pixels.size == 0:
        raise NotAnImage(f"the {inspected.format.value} data is truncated or corrupt and cannot be decoded")
    return DecodedImage(pixels=pixels, format=inspected.format)


def eight_bit(pixels: Pixels) -> Pixels:
    """`pixels` with 8 bits a channel: 16-bit ones keep their high byte."""
    return (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels


def to_rgb8(pixels: Pixels) -> np.ndarray:
    """An 8-bit, 3-channel RGB copy of `pixels` (gray, BGR or BGRA; 8 or 16 bit) for the detector."""
    pixels = eight_bit(pixels)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def to_gray8(pixels: Pixels) -> np.ndarray:
    """The 8-bit, one-channel brightness of `pixels` (gray, BGR or BGRA; 8 or 16 bit): `pixels` itself when it
    is 8-bit gray already, else a copy."""
    pixels = eight_bit(pixels)
    if pixels.ndim == 2:
        return pixels
    return cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY if pixels.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
