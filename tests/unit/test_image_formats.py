"""Images as they come from real systems: every EXIF orientation, CMYK and gray JPEGs, palette
PNGs, animations, files cut short, empty files and decompression bombs."""

from __future__ import annotations

import io
import resource
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, IptcImagePlugin, PngImagePlugin

from consumer.errors import ImageTooLarge, NotAnImage, UnsupportedImage
from consumer.imaging.decode import decode_image, to_rgb8
from consumer.imaging.encode import EncodeQuality, encode_image
from tests.support import SAMPLES

# The transpose that undoes each EXIF orientation (as PIL's exif_transpose applies it) is its
# own inverse, except 6 and 8 which undo each other; `stored = upright.transpose(STORE[o])`.
STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright() -> Image.Image:
    """An asymmetric 240x160 crop of the astronaut: any wrong turn or flip shows."""
    return Image.open(SAMPLES / "astronaut.png").convert("RGB").crop((100, 0, 340, 160))


def jpeg(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, **options)
    return out.getvalue()


def bgr_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))[:, :, ::-1].astype(np.int16)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_upright(orientation: int) -> None:
    stored = upright() if orientation == 1 else upright().transpose(STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(jpeg(stored, exif=exif), 10**8)
    assert (decoded.width, decoded.height) == upright().size
    assert np.abs(decoded.pixels.astype(np.int16) - bgr_of(upright())).mean() < 6


@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_cmyk_and_gray_jpegs_decode_to_three_channels_with_their_colours(mode: str) -> None:
    original = upright().convert(mode)
    decoded = decode_image(jpeg(original), 10**8)
    assert decoded.pixels.shape == (160, 240, 3)
    assert np.abs(decoded.pixels.astype(np.int16) - bgr_of(original)).mean() < 6


def test_a_palette_png_decodes_to_its_colours() -> None:
    original = upright().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    out = io.BytesIO()
    original.save(out, "PNG")
    decoded = decode_image(out.getvalue(), 10**8)
    assert np.array_equal(to_rgb8(decoded.pixels)[:, :, ::-1].astype(np.int16), bgr_of(original))


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_animations_are_refused_not_cut_to_their_first_frame(image_format: str) -> None:
    frames = [upright(), upright().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    out = io.BytesIO()
    frames[0].save(out, image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(UnsupportedImage, match="animated"):
        decode_image(out.getvalue(), 10**8)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "BMP"])
def test_files_cut_short_are_refused(image_format: str) -> None:
    out = io.BytesIO()
    upright().save(out, image_format)
    data = out.getvalue()
    with pytest.raises(NotAnImage):
        decode_image(data[: len(data) // 2], 10**8)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"BM"])
def test_empty_files_and_bare_signatures_are_refused(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        decode_image(data, 10**8)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int) -> bytes:
    """A valid gray PNG of side x side black pixels: a few hundred kilobytes, side**2 bytes decoded."""
    rows = zlib.compress(b"\x00" * ((side + 1) * side), 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header_before_any_pixel_is_decoded() -> None:
    bomb = png_bomb(30_000)  # 900 MB of pixels in under 1 MB
    assert len(bomb) < 1_000_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageTooLarge, match="30000x30000"):
        decode_image(bomb, 100_000_000)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 100_000, f"peak memory grew {grown_kib} KiB"


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><exif:GPSLatitude>48,51.4N</exif:GPSLatitude></rdf:RDF></x:xmpmeta>'
)
IPTC = b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x5a\x00\x05Paris\x00"  # City record of IPTC-IIM
GPS_IFD = 0x8825


def with_location_metadata(image_format: str) -> bytes:
    """A small image carrying EXIF with GPS, XMP with a GPS position and (JPEG) an IPTC city."""
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    out = io.BytesIO()
    if image_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        upright().save(out, image_format, pnginfo=info)
    else:
        upright().save(out, image_format, exif=exif, xmp=XMP)
    data = out.getvalue()
    if image_format == "PNG":  # Pillow writes no eXIf chunk next to pnginfo: add one after IHDR
        ihdr_end = 8 + 4 + 4 + 13 + 4
        exif_chunk = png_chunk(b"eXIf", exif.tobytes().removeprefix(b"Exif\x00\x00"))
        data = data[:ihdr_end] + exif_chunk + data[ihdr_end:]
    if image_format == "JPEG":  # Pillow writes no IPTC: add an APP13 segment after SOI
        app13 = b"Photoshop 3.0\x00" + IPTC
        data = data[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + data[2:]
    return data


def metadata_of(data: bytes) -> dict[str, object]:
    """What a reader finds: GPS tags, XMP and IPTC (empty values when absent)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {
            "gps": dict(image.getexif().get_ifd(GPS_IFD)),
            "xmp": image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b"",
            "iptc": IptcImagePlugin.getiptcinfo(image) if image.format == "JPEG" else None,
            "raw": [m for m in (b"GPSLatitude", b"Photoshop 3.0", b"8BIM", b"Paris") if m in data],
        }


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_exif_xmp_and_iptc_metadata_do_not_reach_the_output(image_format: str) -> None:
    data = with_location_metadata(image_format)
    before = metadata_of(data)
    assert before["gps"]
    assert before["xmp"]
    assert before["raw"]
    assert before["iptc"] or image_format != "JPEG"
    decoded = decode_image(data, 10**8)
    output = encode_image(decoded.pixels, decoded.format, EncodeQuality())
    assert metadata_of(output) == {"gps": {}, "xmp": b"", "iptc": None, "raw": []}
