"""What an image's header says, read before any pixel is decoded.

The pixel limit is checked on these dimensions, so a decompression bomb (a few
kilobytes that would decode to gigabytes) is refused before OpenCV allocates
anything. The same reading finds animated images. (Files cut short are refused
by OpenCV's decoders themselves: tests/unit/test_image_formats.py.)
Raises NotAnImage when the header cannot be read.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from consumer.errors import NotAnImage
from consumer.imaging.types import ImageFormat

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): not DHT, JPG or DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    animated: bool = False


def read_header(data: bytes, image_format: ImageFormat) -> ImageHeader:
    """The dimensions and shape of `data`, already known to be `image_format`."""
    try:
        header = _READERS[image_format](data)
    except (struct.error, IndexError, ValueError) as exc:
        raise NotAnImage(
            f"the {image_format.value} header is truncated or corrupt: the image cannot be decoded"
        ) from exc
    if header.width <= 0 or header.height <= 0:
        raise NotAnImage(f"the {image_format.value} header says {header.width}x{header.height} pixels")
    return header


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each marker segment of JPEG `data` before its scan: (marker, payload). Raises IndexError or
    struct.error when the data ends first."""
    pos = 2
    while True:
        while data[pos] != 0xFF:  # tolerate fill bytes between segments
            pos += 1
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker == 0xDA:
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, data[pos + 4 : pos + 2 + length]
        pos += 2 + length


def _jpeg(data: bytes) -> ImageHeader:
    for marker, payload in jpeg_segments(data):
        if marker in _SOF_MARKERS:  # sample precision, then height and width
            height, width = struct.unpack(">HH", payload[1:5])
            return ImageHeader(width, height)
    raise ValueError("scan data before any frame header")


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk of PNG `data` before its image data: (type, body)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            return
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _png(data: bytes) -> ImageHeader:
    width, height = struct.unpack(">II", data[16:24])
    # an APNG's animation control chunk comes before the first image data
    animated = any(kind == b"acTL" for kind, _body in png_chunks(data))
    return ImageHeader(width, height, animated)


def _bmp(data: bytes) -> ImageHeader:
    (info_size,) = struct.unpack("<I", data[14:18])
    if info_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return ImageHeader(width, abs(height))  # a negative height is a top-down bitmap


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8X":
        flags = data[20]
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return ImageHeader(width, height, animated=bool(flags & 0x02))
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageHeader((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader(width & 0x3FFF, height & 0x3FFF)
    raise ValueError(f"unknown WebP chunk {chunk!r}")


_READERS: dict[ImageFormat, Callable[[bytes], ImageHeader]] = {
    ImageFormat.JPEG: _jpeg,
    ImageFormat.PNG: _png,
    ImageFormat.BMP: _bmp,
    ImageFormat.WEBP: _webp,
}
