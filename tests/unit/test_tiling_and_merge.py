"""Tile geometry and the merge of overlapping detections: pure logic."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np
import pytest

from consumer.detection.merge import drop_nested, suppress_overlaps
from consumer.detection.tiling import Window, holding, tile_starts, to_source, windows
from consumer.imaging.types import Box, Detection, Point


@pytest.mark.parametrize("length", [1, 127, 128, 129, 200, 500, 1024, 1537])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_windows_cover_the_image_inside_its_border_and_overlap_as_asked(length: int, overlap: float) -> None:
    side = 128
    starts = tile_starts(length, side, overlap)
    covered = np.zeros(length, bool)
    for start in starts:
        assert start >= 0
        assert start + side <= length or length < side
        covered[start : start + side] = True
    assert covered.all()
    shared = [a + side - b for a, b in pairwise(starts)]
    assert all(s >= round(side * overlap) for s in shared), shared


def test_windows_cover_both_axes() -> None:
    tiles = windows(300, 130, 128, 0.25)
    assert {(w.x, w.y) for w in tiles} == {(x, y) for y in (0, 2) for x in (0, 96, 172)}


def test_a_guided_pass_keeps_the_windows_holding_a_hint_at_its_scale() -> None:
    tiles = windows(300, 130, 128, 0.25)  # x 0, 96, 172; y 0, 2
    # At scale 0.5, source (200, 100) is (100, 50): in the windows at x 0 and 96, both rows.
    # Source (343, 4) is (171.5, 2): in x 96 only (172 starts just after it), both rows (2 starts the second).
    assert holding(tiles, [Point(200, 100)], 0.5) == [w for w in tiles if w.x in (0, 96)]
    assert holding(tiles, [Point(343, 4)], 0.5) == [w for w in tiles if w.x == 96]
    assert holding(tiles, [Point(600, 0)], 0.5) == []  # (300, 0): right of the last window's end
    assert holding(tiles, [], 0.5) == []


def test_a_box_maps_back_to_source_pixels_rounded_outwards_and_clipped() -> None:
    window = Window(x=96, y=10, side=128)
    assert to_source(Box(4, 5, 10, 10), window, 0.5, 1000, 1000) == Box(200, 30, 20, 20)
    # x: 97 / 0.3 = 323.3 rounds down, 100 / 0.3 = 333.3 up.
    assert to_source(Box(1, 1, 3, 3), window, 0.3, 1000, 1000) == Box(323, 36, 11, 11)
    assert to_source(Box(100, 100, 28, 28), window, 0.5, 400, 250) == Box(392, 220, 8, 30)


def test_overlapping_detections_keep_the_best_and_distinct_faces_stay() -> None:
    best = Detection(Box(10, 10, 40, 40), 0.9)
    same_face = Detection(Box(14, 12, 40, 40), 0.6)
    other_face = Detection(Box(100, 10, 40, 40), 0.4)
    touching = Detection(Box(40, 10, 40, 40), 0.5)  # IoU 1/7 with the best: another face beside it
    merged = suppress_overlaps([same_face, other_face, best, touching], 0.3)
    assert merged == [dataclasses.replace(best, support=2), touching, other_face]  # the best absorbed one
    assert suppress_overlaps([], 0.3) == []


def test_a_face_found_inside_a_larger_face_is_dropped_and_neighbours_stay() -> None:
    face = Detection(Box(100, 100, 200, 200), 0.9)
    eye = Detection(Box(150, 150, 30, 30), 0.6)  # wholly inside
    half = Detection(Box(200, 120, 110, 110), 0.5)  # 100 of its 110 columns inside: 91% of its area
    neighbour = Detection(Box(280, 100, 200, 200), 0.8)  # overlaps, but mostly outside
    kept = drop_nested([eye, face, half, neighbour], 0.8)
    assert kept == [face, neighbour]
    assert drop_nested([], 0.8) == []
