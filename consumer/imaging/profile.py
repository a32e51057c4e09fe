"""The input's colour profile, carried into the output.

OpenCV decodes an image's pixel values and encodes them back without the ICC
profile that says which colours those values are. A photo in Adobe RGB or
Display P3 (what most phones and many cameras write) would then be shown as
sRGB by a colour-managed viewer: the whole picture duller, not only its faces.
So the profile is read from the input and written into the output as that
format carries it:

    JPEG  APP2 segments marked ICC_PROFILE (split over several when large)
    PNG   an iCCP chunk (zlib-compressed), before the image data
    WebP  an ICCP chunk, after a VP8X chunk whose flag announces it

A profile is only carried when it describes the output's colours (an RGB
profile for colour pixels, a gray one for gray pixels: a CMYK JPEG's profile
does not fit the RGB pixels OpenCV decodes it to), and BMP output carries none.
Nothing else of the input's metadata (EXIF, GPS, XMP, comments) is carried.
A profile that cannot be read (cut short, corrupt, over `MAX_PROFILE_BYTES`)
is left out: the image is masked all the same.
"""

from __future__ import annotations

import struct
import zlib

from consumer.imaging.header import jpeg_segments, png_chunks, read_header
from consumer.imaging.types import ImageFormat, Pixels

MAX_PROFILE_BYTES = 4 << 20  # profiles are a few KB; the largest common ones (LUT-based) under 1 MB
_JPEG_ICC = b"ICC_PROFILE\x00"
_JPEG_CHUNK = 65535 - 2 - len(_JPEG_ICC) - 2  # a segment's length field counts itself; 2 bytes of sequence
_ICC_HEADER = 128  # bytes before a profile's tag table; its colour space is at 16:20
_PNG_HEADER_END = 8 + 4 + 4 + 13 + 4  # the signature, then IHDR (length, type, 13 bytes, CRC)
_WEBP_ICC_FLAG, _WEBP_ALPHA_FLAG = 0x20, 0x10


def read_profile(data: bytes, image_format: ImageFormat) -> bytes | None:
    """The ICC profile embedded in image `data`, or None (none, unreadable, or too large)."""
    try:
        profile = _READERS[image_format](data) if image_format in _READERS else None
    except (struct.error, IndexError, ValueError, zlib.error):
        return None
    if profile is None or not _ICC_HEADER <= len(profile) <= MAX_PROFILE_BYTES:
        return None
    return profile


def carried_profile(profile: bytes | None, pixels: Pixels) -> bytes | None:
    """`profile` when it describes `pixels`' colours (RGB for colour, GRAY for gray), else None."""
    if profile is None:
        return None
    wanted = b"GRAY" if pixels.ndim == 2 or pixels.shape[2] == 1 else b"RGB "
    return profile if profile[16:20] == wanted else None


def with_profile(encoded: bytes, image_format: ImageFormat, profile: bytes | None) -> bytes:
    """Image `encoded` (as OpenCV writes `image_format`, no profile of its own) with `profile` embedded;
    `encoded` itself when there is none or the format carries none (BMP)."""
    if profile is None or image_format not in _WRITERS:
        return encoded
    return _WRITERS[image_format](encoded, profile)


def _read_jpeg(data: bytes) -> bytes | None:
    chunks: dict[int, bytes] = {}
    count = 0
    for marker, payload in jpeg_segments(data):
        if marker == 0xE2 and payload.startswith(_JPEG_ICC):
            sequence, count = payload[len(_JPEG_ICC)], payload[len(_JPEG_ICC) + 1]
            chunks[sequence] = payload[len(_JPEG_ICC) + 2 :]
    if not chunks or sorted(chunks) != list(range(1, count + 1)):
        return None  # none, or some of its parts missing
    return b"".join(chunks[n] for n in range(1, count + 1))


def _write_jpeg(encoded: bytes, profile: bytes) -> bytes:
    parts = [profile[i : i + _JPEG_CHUNK] for i in range(0, len(profile), _JPEG_CHUNK)]
    segments = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + len(_JPEG_ICC) + 2 + len(part)) + _JPEG_ICC + bytes([n, len(parts)]) + part
        for n, part in enumerate(parts, start=1)
    )
    at = 2  # after SOI, and after the JFIF APP0 segment when there is one (it must come first)
    if encoded[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", encoded[4:6])[0]
    return encoded[:at] + segments + encoded[at:]


def _read_png(data: bytes) -> bytes | None:
    body = next((body for kind, body in png_chunks(data) if kind == b"iCCP"), None)
    if body is None:
        return None
    inflater = zlib.decompressobj()
    profile = inflater.decompress(body[body.index(b"\x00") + 2 :], MAX_PROFILE_BYTES + 1)
    return profile if inflater.eof else None  # cut short, or longer than the limit


def _write_png(encoded: bytes, profile: bytes) -> bytes:
    body = b"ICC Profile\x00\x00" + zlib.compress(profile)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    return encoded[:_PNG_HEADER_END] + chunk + encoded[_PNG_HEADER_END:]


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The RIFF container's chunks: (fourcc, payload)."""
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        chunks.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _read_webp(data: bytes) -> bytes | None:
    return next((payload for fourcc, payload in _webp_chunks(data) if fourcc == b"ICCP"), None)


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _write_webp(encoded: bytes, profile: bytes) -> bytes:
    chunks = _webp_chunks(encoded)
    first, payload = chunks[0]
    if first == b"VP8X":
        header = bytes([payload[0] | _WEBP_ICC_FLAG]) + payload[1:]
        rest = chunks[1:]
    else:  # a simple WebP: a VP8X header announces the profile, with the canvas and (lossless) alpha
        size = read_header(encoded, ImageFormat.WEBP)
        alpha = first == b"VP8L" and bool(payload[4] & 0x10)  # the lossless header's alpha_is_used bit
        flags = _WEBP_ICC_FLAG | (_WEBP_ALPHA_FLAG if alpha else 0)
        canvas = (size.width - 1).to_bytes(3, "little") + (size.height - 1).to_bytes(3, "little")
        header = bytes([flags, 0, 0, 0]) + canvas
        rest = chunks
    body = b"WEBP" + _chunk(b"VP8X", header) + _chunk(b"ICCP", profile) + b"".join(_chunk(*c) for c in rest)
    return b"RIFF" + struct.pack("<I", len(body)) + body


_READERS = {ImageFormat.JPEG: _read_jpeg, ImageFormat.PNG: _read_png, ImageFormat.WEBP: _read_webp}
_WRITERS = {ImageFormat.JPEG: _write_jpeg, ImageFormat.PNG: _write_png, ImageFormat.WEBP: _write_webp}
