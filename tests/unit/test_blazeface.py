"""BlazeFace decoding: the anchor grids, MediaPipe's weighted suppression, and the whole detector held
to MediaPipe's own Tasks FaceDetector on real photos."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from mediapipe import Image as MpImage
from mediapipe import ImageFormat
from mediapipe.tasks.python import BaseOptions, vision

from consumer.detection.blazeface import anchor_centres, decode, score_logit, weighted_suppression
from consumer.detection.crops import rgb_view
from consumer.detection.model_files import DEFAULT_MODELS_DIR, DETECTORS, MODEL_FILES, ModelKind
from consumer.detection.network import FaceDetector
from consumer.detection.scan import cut_tiles
from consumer.imaging.types import Box
from consumer.native_stderr import native_stderr_silenced
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, annotated_images, images_with_large_faces, iou, read_image

LOW_SCORE = 0.3  # low enough that every tile has weak candidates to merge


class TasksDetector:
    """MediaPipe's Tasks FaceDetector on one model: the reference. Boxes as MediaPipe reports them
    (whole pixels, truncated), clipped to the image as `FaceDetector` clips its own."""

    def __init__(self, kind: ModelKind) -> None:
        path = DEFAULT_MODELS_DIR / MODEL_FILES[kind].filename
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=LOW_SCORE,
        )
        with native_stderr_silenced():
            self._detector = vision.FaceDetector.create_from_options(options)

    def detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        image = MpImage(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with native_stderr_silenced():
            detections = self._detector.detect(image).detections
        found = []
        for detection in detections:
            bb = detection.bounding_box
            box = Box(bb.origin_x, bb.origin_y, bb.width, bb.height).clipped(rgb.shape[1], rgb.shape[0])
            found.append((box, float(detection.categories[0].score)))
        return found

    def close(self) -> None:
        with native_stderr_silenced():
            self._detector.close()


@pytest.fixture(scope="module", params=list(DETECTORS))
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[ModelKind, FaceDetector, TasksDetector]]:
    kind: ModelKind = request.param
    ours, reference = FaceDetector(kind, DEFAULT_MODELS_DIR, LOW_SCORE), TasksDetector(kind)
    yield kind, ours, reference
    ours.close()
    reference.close()


def test_the_anchor_grids_are_mediapipes() -> None:
    short, full = anchor_centres(ModelKind.SHORT_RANGE, 128), anchor_centres(ModelKind.FULL_RANGE, 192)
    assert short.shape == (896, 2)  # the network's output rows
    assert full.shape == (2304, 2)
    # Stride 8: two anchors per cell, row by row; then stride 16: six per cell.
    assert short[:4].tolist() == [[4, 4], [4, 4], [12, 4], [12, 4]]
    assert short[512:519].tolist() == [[8, 8]] * 6 + [[24, 8]]
    assert full[48].tolist() == [2, 6]


def test_weighted_suppression_merges_overlapping_boxes_into_their_score_weighted_mean() -> None:
    boxes = np.array([[10, 10, 30, 30], [12, 12, 32, 32], [100, 100, 120, 120], [11, 10, 31, 30]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.3], np.float32)
    merged, alone = weighted_suppression(boxes, scores)
    assert merged.score == pytest.approx(0.9)  # the best one's score
    expected = (boxes[[1, 0, 3]] * np.array([[0.9], [0.6], [0.3]])).sum(axis=0) / 1.8
    assert (merged.x0, merged.y0, merged.x1, merged.y1) == pytest.approx(tuple(expected), rel=1e-5)
    assert (alone.x0, alone.y0, alone.x1, alone.y1, alone.score) == pytest.approx((100, 100, 120, 120, 0.5))


def test_decoding_keeps_only_scores_above_the_threshold_and_offsets_boxes_from_their_anchor() -> None:
    centres = np.array([[4, 4], [60, 60]], np.float32)
    regressors = np.zeros((2, 16), np.float32)
    regressors[:, :4] = [[1, -1, 8, 6], [0, 0, 10, 10]]
    logits = np.array([2.0, -2.0], np.float32)  # scores 0.88 and 0.12
    [face] = decode(regressors, logits, centres, score_logit(0.5))
    assert (face.x0, face.y0, face.x1, face.y1) == pytest.approx((1, 0, 9, 6))
    assert face.score == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert len(decode(regressors, logits, centres, score_logit(0.1))) == 2


def _photo_tiles(kind: ModelKind, count: int) -> list[np.ndarray]:
    """Tiles of the network's input size, cut from annotated photos at two scales."""
    side = MODEL_FILES[kind].input_side
    tiles = []
    for image in annotated_images()[:count]:
        pixels = read_image(image.path)
        for scale in (0.5, 0.25) if kind is ModelKind.SHORT_RANGE else (0.5, 0.375):
            tiles += [np.ascontiguousarray(t) for _, t in cut_tiles(rgb_view(pixels, scale), side, 0.25)]
    return [t for t in tiles if t.shape[:2] == (side, side)]


def test_on_network_sized_tiles_it_finds_what_mediapipe_finds(
    pair: tuple[ModelKind, FaceDetector, TasksDetector],
) -> None:
    """Same faces, same scores, the same whole-pixel boxes give or take float rounding. A box crossing
    the tile's edge MediaPipe moves inside, keeping its size; we cut it at the edge: those only have to
    overlap."""
    kind, ours, reference = pair
    side = MODEL_FILES[kind].input_side
    tiles = _photo_tiles(kind, 6)
    compared = 0
    for tile in tiles:
        expected, found = reference.detect(tile), ours.detect(tile)
        assert [d.score for d in found] == pytest.approx([score for _, score in expected], abs=1e-4)
        for (box, _), detection in zip(expected, found, strict=True):
            if min(box.x, box.y) > 0 and max(box.x + box.w, box.y + box.h) < side:
                assert np.abs(np.subtract(box.as_tuple(), detection.box.as_tuple())).max() <= 1, (box, detection.box)
                compared += 1
            else:
                assert iou(box.as_tuple(), detection.box.as_tuple()) > 0.5, (box, detection.box)
    assert compared >= 20  # the photos hold enough faces and near-faces for this to mean something


def test_on_other_sizes_it_finds_the_faces_mediapipe_finds(pair: tuple[ModelKind, FaceDetector, TasksDetector]) -> None:
    """Fitting a larger or oblong image into the network is ours (area resizing, black padding; MediaPipe
    samples bilinearly), so scores differ a little; a clear face is found by both, in the same place."""
    _, ours, reference = pair
    compared = 0
    for path in (SAMPLES / "astronaut.png", *(image.path for image in images_with_large_faces(8))):
        pixels = read_image(path)
        rgb = rgb_view(pixels, 1 / max(1, max(pixels.shape[:2]) // 256))
        clear = [(box, score) for box, score in reference.detect(rgb) if score >= 0.7]
        found = ours.detect(rgb)
        for box, _ in clear:
            assert max(iou(box.as_tuple(), d.box.as_tuple()) for d in found) > 0.7, (path.name, box)
            compared += 1
    assert compared >= 6


def test_short_range_on_a_larger_square_finds_each_face_where_it_is() -> None:
    """Four astronauts in the quadrants of a 320-px square, the network run on it at once: each face is
    found where it was pasted, so the anchor grid of the larger square is laid out as the network's."""
    astronaut = cv2.resize(read_image(SAMPLES / "astronaut.png"), (160, 160), interpolation=cv2.INTER_AREA)
    square = np.zeros((320, 320, 3), np.uint8)
    x, y, w, h = (round(v * 160 / 512) for v in ASTRONAUT_FACE)
    expected = []
    for left, top in ((0, 0), (160, 0), (0, 160), (160, 160)):
        square[top : top + 160, left : left + 160] = astronaut
        expected.append((left + x, top + y, w, h))
    with FaceDetector(ModelKind.SHORT_RANGE, DEFAULT_MODELS_DIR, 0.5, side=320) as detector:
        found = detector.detect(cv2.cvtColor(square, cv2.COLOR_BGR2RGB))
    for face in expected:
        assert max(iou(face, d.box.as_tuple()) for d in found) > 0.6, (face, found)


def test_a_square_the_network_cannot_take_is_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        FaceDetector(ModelKind.SHORT_RANGE, DEFAULT_MODELS_DIR, 0.5, side=200)
    with pytest.raises(ValueError, match="192-px squares only"):
        FaceDetector(ModelKind.FULL_RANGE, DEFAULT_MODELS_DIR, 0.5, side=384)
