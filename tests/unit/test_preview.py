"""The preview: candidates drawn, kept ones green and rejected ones red, in every pixel layout."""

from __future__ import annotations

import numpy as np
import pytest

from consumer.imaging.preview import KEPT, REJECTED, draw_detections
from consumer.imaging.types import Box, Detection


def test_kept_faces_are_drawn_green_and_rejected_candidates_red() -> None:
    pixels = np.full((300, 300, 3), 128, np.uint8)
    kept = Detection(Box(20, 40, 80, 80), 0.9, verification=0.8)
    rejected = Detection(Box(180, 40, 80, 80), 0.6, verification=0.1)
    draw_detections(pixels, [(kept, True), (rejected, False)])
    assert tuple(pixels[80, 20]) == KEPT  # the left edge of each box
    assert tuple(pixels[80, 180]) == REJECTED
    assert tuple(pixels[80, 60]) == (128, 128, 128)  # inside a box: untouched, nothing masked


@pytest.mark.parametrize(
    ("shape", "dtype"), [((100, 100), np.uint8), ((100, 100, 4), np.uint8), ((100, 100, 3), np.uint16)]
)
def test_gray_alpha_and_16_bit_images_are_drawn_on_in_their_own_layout(shape: tuple[int, ...], dtype: type) -> None:
    pixels: np.ndarray = np.zeros(shape, dtype)
    draw_detections(pixels, [(Detection(Box(10, 30, 50, 50), 0.6, verification=0.9), True)])
    assert pixels.shape == shape
    assert pixels.dtype == dtype
    assert pixels[50, 10].max() > 0
