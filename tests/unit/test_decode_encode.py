from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from consumer.errors import ImageTooLarge, NotAnImage, UnsupportedImage
from consumer.imaging.decode import decode_image, sniff_format, to_rgb8
from consumer.imaging.encode import EncodeQuality, encode_image
from consumer.imaging.types import ImageFormat
from tests.images import exif_rotated_astronaut, has_gps
from tests.support import SAMPLES, read_image


@pytest.mark.parametrize("image_format", list(ImageFormat))
def test_every_format_round_trips_and_keeps_its_format(image_format: ImageFormat) -> None:
    pixels = read_image(SAMPLES / "chelsea.png")
    data = encode_image(pixels, image_format, EncodeQuality())
    assert sniff_format(data) is image_format
    decoded = decode_image(data, 10**8)
    assert decoded.format is image_format
    assert decoded.pixels.shape == pixels.shape


def test_exif_orientation_is_applied_and_no_metadata_is_written(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    width, height = exif_rotated_astronaut(path)
    assert has_gps(path.read_bytes(), tmp_path / "check.jpg")
    decoded = decode_image(path.read_bytes(), 10**8)
    assert (decoded.width, decoded.height) == (width, height)
    output = encode_image(decoded.pixels, decoded.format, EncodeQuality())
    assert not has_gps(output, tmp_path / "out.jpg")
    assert b"Exif" not in output[:4096]


@pytest.mark.parametrize("data", [b"", b"hello world", b"\xff\xd8\xff\xe0" + b"\x00" * 50])
def test_what_is_not_a_decodable_image_is_refused(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        decode_image(data, 10**8)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"GIF89a....", "GIF"),
        (b"II*\x00" + b"\x00" * 12, "TIFF"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 12, "HEIC"),
        (b"\x00\x00\x00\x18ftypavif" + b"\x00" * 12, "AVIF"),
    ],
)
def test_image_types_we_do_not_read_are_named_as_unsupported(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedImage, match=f"{name} images are not supported"):
        decode_image(data, 10**8)


@pytest.mark.parametrize("target", [ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.PNG])
def test_a_16_bit_png_with_alpha_converts_to_what_the_target_format_holds(target: ImageFormat) -> None:
    rgba16 = np.full((20, 30, 4), 40000, np.uint16)
    decoded = decode_image(encode_image(rgba16, ImageFormat.PNG, EncodeQuality()), 10**8)
    converted = decode_image(encode_image(decoded.pixels, target, EncodeQuality()), 10**8)
    assert converted.format is target
    assert (converted.width, converted.height) == (30, 20)


def test_pixel_limit() -> None:
    data = encode_image(np.zeros((100, 100, 3), np.uint8), ImageFormat.PNG, EncodeQuality())
    with pytest.raises(ImageTooLarge):
        decode_image(data, 9_999)


def test_png_alpha_and_16_bit_are_kept_and_fed_to_the_detector_as_rgb8() -> None:
    rgba16 = np.full((20, 30, 4), 40000, np.uint16)
    decoded = decode_image(encode_image(rgba16, ImageFormat.PNG, EncodeQuality()), 10**8)
    assert decoded.pixels.dtype == np.uint16
    assert decoded.pixels.shape == (20, 30, 4)
    rgb = to_rgb8(decoded.pixels)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (20, 30, 3)
    assert to_rgb8(np.zeros((5, 5), np.uint8)).shape == (5, 5, 3)
