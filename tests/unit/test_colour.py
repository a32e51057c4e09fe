"""The colour features the verifier weighs: skin share and saturation of a candidate's middle."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from consumer.detection.colour import MONOCHROME_TINT, colour_features, detector_view, is_monochrome
from consumer.imaging.types import Box

SKIN_BGR = (120, 150, 210)  # a light skin tone (Cr about 155, Cb about 100)
DARK_SKIN_BGR = (50, 80, 130)
WATER_BGR = (200, 120, 40)


def canvas(colour: tuple[int, int, int], size: int = 100) -> np.ndarray:
    return np.full((size, size, 3), colour, np.uint8)


@pytest.mark.parametrize("bgr", [SKIN_BGR, DARK_SKIN_BGR])
def test_skin_tones_count_as_skin(bgr: tuple[int, int, int]) -> None:
    features = colour_features(canvas(bgr), Box(30, 30, 40, 40))
    assert features["skin"] == 1.0
    assert 0.2 < features["sat"] < 0.8


def test_water_and_grey_are_not_skin_and_grey_has_no_saturation() -> None:
    assert colour_features(canvas(WATER_BGR), Box(30, 30, 40, 40))["skin"] == 0.0
    grey = colour_features(canvas((128, 128, 128)), Box(30, 30, 40, 40))
    assert grey == {"skin": 0.0, "sat": 0.0}


def test_only_the_middle_of_the_box_is_measured() -> None:
    pixels = canvas(WATER_BGR)
    pixels[38:62, 38:62] = SKIN_BGR  # the middle 0.6 of a 40-px box centred at 50 is 24 px: exactly this square
    assert colour_features(pixels, Box(30, 30, 40, 40))["skin"] == 1.0
    assert colour_features(pixels, Box(0, 0, 40, 40))["skin"] == 0.0


def test_gray_and_16_bit_images_and_boxes_off_the_image() -> None:
    gray = np.full((50, 50), 90, np.uint8)
    assert colour_features(gray, Box(10, 10, 20, 20)) == {"skin": 0.0, "sat": 0.0}
    deep = (canvas(SKIN_BGR).astype(np.uint16) << 8) | 0x80
    assert colour_features(deep, Box(30, 30, 40, 40))["skin"] == 1.0
    assert colour_features(canvas(SKIN_BGR), Box(300, 300, 40, 40)) == {"skin": 0.0, "sat": 0.0}
    assert colour_features(canvas(SKIN_BGR), Box(90, 90, 40, 40))["skin"] == 1.0  # clipped to the image


def test_gray_photos_are_monochrome_and_colour_ones_are_not() -> None:
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (300, 400), np.uint8)
    assert is_monochrome(gray)
    assert is_monochrome(np.dstack([gray] * 3))  # a gray photo stored as colour
    assert is_monochrome(np.dstack([gray] * 3 + [np.full_like(gray, 255)]))  # ... with alpha
    assert is_monochrome(np.dstack([gray] * 3).astype(np.uint16) << 8)
    colour = np.dstack([gray] * 3)
    colour[100:130, 100:130] = SKIN_BGR  # 0.75% of the photo has colour: enough
    assert not is_monochrome(colour)
    three_colours = canvas(WATER_BGR)
    three_colours[33:66], three_colours[66:] = SKIN_BGR, (60, 170, 60)
    assert not is_monochrome(three_colours)
    assert is_monochrome(canvas(WATER_BGR))  # one hue at one brightness: as monochrome as a cyanotype


def test_toned_prints_are_monochrome_too() -> None:
    rng = np.random.default_rng(11)
    gray = rng.integers(0, 256, (300, 400)).astype(np.float64)
    sepia = np.clip(np.dstack([gray * 0.75, gray * 0.88, gray]), 0, 255).astype(np.uint8)  # B, G, R
    cold = np.clip(np.dstack([gray, gray * 0.9, gray * 0.8]) + 10, 0, 255).astype(np.uint8)
    assert is_monochrome(sepia)
    assert is_monochrome(cold)
    sepia[:40, :40] = WATER_BGR  # 1.3% of it in a colour of its own: a colour photo
    assert not is_monochrome(sepia)
    view, monochrome = detector_view(cold)
    assert monochrome
    assert tuple(view[5, 5]) == tuple(detector_view(cv2.cvtColor(cold, cv2.COLOR_BGR2GRAY))[0][5, 5])


def test_the_detector_sees_a_monochrome_photo_tinted_and_a_colour_one_as_it_is() -> None:
    colour = canvas(WATER_BGR)
    colour[33:66], colour[66:] = SKIN_BGR, (60, 170, 60)
    view, monochrome = detector_view(colour)
    assert view is colour
    assert not monochrome
    gray = np.tile(np.arange(256, dtype=np.uint8), (10, 1))
    for pixels in (gray, np.dstack([gray] * 3), np.dstack([gray] * 3).astype(np.uint16) << 8):
        view, monochrome = detector_view(pixels)
        assert monochrome
        assert view.shape == (10, 256, 3)
        assert view.dtype == np.uint8
        blue, green, red = MONOCHROME_TINT
        assert tuple(view[0, 200]) == (round(200 * blue), round(200 * green), round(200 * red))  # B, G, R
        assert (view[0, 1:, 2] >= view[0, :-1, 2]).all()  # the gray levels keep their order
