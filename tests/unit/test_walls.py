"""The walls of faces the harness measures crowds with: the layout of the cuts and where their faces land."""

from __future__ import annotations

import numpy as np

from consumer.evaluation.walls import Portrait, wall
from consumer.imaging.types import Box


def test_a_wall_lays_the_cuts_in_rows_and_carries_each_face_box_into_it() -> None:
    plain = np.full((100, 100, 3), 200, np.uint8)
    plain[25:75, 30:70] = 50  # the face, 40 x 50
    cuts = [Portrait(plain, Box(30, 25, 40, 50)), Portrait(plain.copy(), Box(30, 25, 40, 50))]
    pixels, boxes = wall(cuts, 20, size=(200, 130))
    assert pixels.shape == (130, 200, 3)
    # each cut shrinks to 40 px (its face to 20): 5 to a row, 3 rows
    assert len(boxes) == 15
    assert boxes[0] == Box(12, 10, 16, 20)
    assert boxes[6] == Box(52, 50, 16, 20)
    for box in boxes:
        assert box.x + box.w <= 200
        assert box.y + box.h <= 130
        assert (pixels[box.y + 2 : box.y + box.h - 2, box.x + 2 : box.x + box.w - 2] == 50).all()
    assert (pixels[120:, :] == 90).all()  # the canvas below the last row


def test_a_cut_larger_than_the_canvas_makes_an_empty_wall() -> None:
    cut = Portrait(np.zeros((100, 100, 3), np.uint8), Box(40, 40, 20, 20))
    pixels, boxes = wall([cut], 40, size=(150, 150))
    assert boxes == []
    assert (pixels == 90).all()
