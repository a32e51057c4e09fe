"""The input's ICC colour profile reaches the output (JPEG, PNG, WebP), and nothing else does: a wide-gamut
photo keeps its colours after masking."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from consumer.imaging.decode import decode_image
from consumer.imaging.encode import EncodeQuality, encode_image
from consumer.imaging.profile import MAX_PROFILE_BYTES, read_profile, with_profile
from consumer.imaging.types import ImageFormat
from tests.support import SAMPLES

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# Large enough that a JPEG splits it over three APP2 segments (65,519 bytes each at most).
LARGE = SRGB + bytes(range(256)) * 600
CMYK_PROFILE = SRGB[:16] + b"CMYK" + SRGB[20:]
GRAY_PROFILE = SRGB[:16] + b"GRAY" + SRGB[20:]


def photo(mode: str = "RGB") -> Image.Image:
    return Image.open(SAMPLES / "astronaut.png").convert(mode).resize((96, 80))


def saved(image: Image.Image, image_format: str, profile: bytes | None, **options: object) -> bytes:
    stream = io.BytesIO()
    extra = {"icc_profile": profile} if profile is not None else {}
    image.save(stream, image_format, **extra, **options)
    return stream.getvalue()


def profile_in(data: bytes) -> bytes | None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        profile: bytes | None = image.info.get("icc_profile")
        return profile


def masked(data: bytes) -> bytes:
    """What the pipeline does to `data`, but for the masking: decode, then encode with its profile."""
    decoded = decode_image(data, 10**8)
    return encode_image(decoded.pixels, decoded.format, EncodeQuality(), read_profile(data, decoded.format))


@pytest.mark.parametrize(
    ("image_format", "mode", "options"),
    [
        ("JPEG", "RGB", {}),
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("WEBP", "RGB", {}),  # OpenCV writes it back lossy (VP8): a VP8X chunk is added to announce the profile
        ("WEBP", "RGBA", {"lossless": True}),  # ... with alpha: OpenCV's VP8X gets the profile's flag
    ],
)
@pytest.mark.parametrize("profile", [SRGB, LARGE], ids=["srgb", "large"])
def test_the_profile_is_carried_and_the_pixels_are_the_same(
    image_format: str, mode: str, options: dict[str, object], profile: bytes
) -> None:
    data = saved(photo(mode), image_format, profile, **options)
    assert read_profile(data, ImageFormat(image_format.lower())) == profile
    output = masked(data)
    assert profile_in(output) == profile
    decoded = decode_image(data, 10**8)
    bare = encode_image(decoded.pixels, decoded.format, EncodeQuality())
    assert profile_in(bare) is None
    with_it, without = (decode_image(d, 10**8).pixels for d in (output, bare))
    assert with_it.shape == without.shape
    assert np.array_equal(with_it, without)


def test_gray_pixels_keep_a_gray_profile_and_drop_a_colour_one() -> None:
    assert profile_in(masked(saved(photo("L"), "PNG", GRAY_PROFILE))) == GRAY_PROFILE
    assert profile_in(masked(saved(photo("L"), "PNG", SRGB))) is None


def test_a_cmyk_jpegs_profile_does_not_describe_the_rgb_pixels_it_decodes_to() -> None:
    data = saved(photo("CMYK"), "JPEG", CMYK_PROFILE)
    assert read_profile(data, ImageFormat.JPEG) == CMYK_PROFILE
    output = masked(data)
    assert profile_in(output) is None
    assert decode_image(output, 10**8).pixels.shape == (80, 96, 3)


def test_bmp_carries_none_and_no_profile_leaves_the_output_as_opencv_wrote_it() -> None:
    pixels = decode_image(saved(photo(), "PNG", None), 10**8).pixels
    for image_format in ImageFormat:
        bare = encode_image(pixels, image_format, EncodeQuality())
        assert encode_image(pixels, image_format, EncodeQuality(), None) == bare
    assert with_profile(b"BM...", ImageFormat.BMP, SRGB) == b"BM..."


def png_with_iccp(body: bytes) -> bytes:
    data = saved(photo(), "PNG", None)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    return data[:33] + chunk + data[33:]


def test_unreadable_or_oversized_profiles_are_left_out_and_the_image_still_masks(
    capfd: pytest.CaptureFixture[str],
) -> None:
    bomb = png_with_iccp(b"p\x00\x00" + zlib.compress(bytes(64 << 20), 9))  # 64 MB of zeros in 64 KB
    assert len(bomb) < MAX_PROFILE_BYTES
    corrupt = png_with_iccp(b"p\x00\x00" + zlib.compress(SRGB)[:-40])
    nameless = png_with_iccp(b"no name terminator")
    tiny = png_with_iccp(b"p\x00\x00" + zlib.compress(b"short"))
    jpeg = saved(photo(), "JPEG", LARGE)
    second_part = jpeg.index(b"ICC_PROFILE\x00\x02")
    missing_part = jpeg[: second_part - 4] + b"\xff\xfe" + jpeg[second_part - 2 :]  # part 2 made a comment
    for image_format, data in (
        (ImageFormat.PNG, bomb),
        (ImageFormat.PNG, corrupt),
        (ImageFormat.PNG, nameless),
        (ImageFormat.PNG, tiny),
        (ImageFormat.JPEG, missing_part),
    ):
        assert read_profile(data, image_format) is None
        assert profile_in(masked(data)) is None
        assert decode_image(masked(data), 10**8).pixels.shape == (80, 96, 3)
    assert "libpng" not in capfd.readouterr().err  # its warnings about these chunks stay out of the log
