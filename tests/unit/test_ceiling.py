"""The ceiling study: views mirrored and turned map their boxes back, and faces count once per view set."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from consumer.detection.model_files import DEFAULT_MODELS_DIR, DETECTORS, ModelKind
from consumer.detection.network import FaceDetector
from consumer.detection.turns import Turn, turned, unturned
from consumer.evaluation.ceiling import CeilingStudy, View, view_detections
from consumer.evaluation.recall import AnnotatedFace, AnnotatedImage
from consumer.imaging.types import Box, Detection
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, iou, read_image


def bounds(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) - int(xs.min()) + 1, int(ys.max()) - int(ys.min()) + 1)


@pytest.mark.parametrize("turn", list(Turn))
def test_a_box_found_in_a_turned_image_maps_back_onto_the_original(turn: Turn) -> None:
    mask = np.zeros((30, 50), np.uint8)
    original = Box(7, 4, 12, 20)
    mask[original.y : original.y + original.h, original.x : original.x + original.w] = 1
    assert unturned(bounds(turned(mask, turn)), turn, 50, 30) == original


@pytest.fixture(scope="module")
def detectors() -> Iterator[dict[ModelKind, FaceDetector]]:
    found = {m: FaceDetector(m, DEFAULT_MODELS_DIR, 0.5) for m in DETECTORS}
    yield found
    for detector in found.values():
        detector.close()


@pytest.mark.parametrize(
    ("model", "scale", "turn"),
    [
        (ModelKind.FULL_RANGE, None, Turn.MIRROR),
        (ModelKind.SHORT_RANGE, 0.25, Turn.CW),
        (ModelKind.FULL_RANGE, 0.5, Turn.CW),
    ],
)
def test_a_turned_view_finds_the_face_where_it_is_in_the_source(
    detectors: dict[ModelKind, FaceDetector], model: ModelKind, scale: float | None, turn: Turn
) -> None:
    # The astronaut lying on her side (turned anticlockwise): a clockwise view stands her up again.
    upright = read_image(SAMPLES / "astronaut.png")
    lying = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE) if turn is Turn.CW else upright
    mask = np.zeros(upright.shape[:2], np.uint8)
    x, y, w, h = ASTRONAUT_FACE
    mask[y : y + h, x : x + w] = 1
    face = bounds(cv2.rotate(mask, cv2.ROTATE_90_COUNTERCLOCKWISE) if turn is Turn.CW else mask)
    found = view_detections(detectors[model], lying, View(model, scale, turn), overlap=0.25)
    assert max(iou(d.box.as_tuple(), face.as_tuple()) for d in found) > 0.5


def test_the_study_counts_a_face_found_by_any_chosen_view_and_the_candidates_matching_none() -> None:
    small, large = AnnotatedFace(Box(10, 10, 20, 20)), AnnotatedFace(Box(100, 10, 80, 80))
    image = AnnotatedImage(Path("x.jpg"), 200, 100, (small, large, AnnotatedFace(Box(0, 0, 0, 0))), "wider-val")
    tiles = View(ModelKind.SHORT_RANGE, 1.0)
    mirrored = View(ModelKind.SHORT_RANGE, 1.0, Turn.MIRROR)
    study = CeilingStudy()
    study.add(
        image,
        {
            tiles: [Detection(Box(11, 11, 20, 20), 0.6), Detection(Box(150, 90, 10, 10), 0.4)],
            mirrored: [Detection(Box(100, 10, 80, 80), 0.35)],
        },
    )
    both = study.row([tiles, mirrored], 0.3)
    assert (both["all"], both["16-32"], both["64-128"]) == (1.0, 1.0, 1.0)
    assert (both["unmatched"], both["candidates"]) == (1 / 3, 3)
    assert math.isnan(both["<16"])  # the empty face is skipped: nothing to count there
    strict = study.row([tiles, mirrored], 0.5)
    assert (strict["all"], strict["64-128"], strict["unmatched"]) == (0.5, 0.0, 0.0)
    assert study.row([mirrored], 0.3)["16-32"] == 0.0
