"""Regression guards for the default preset's masks, from the measurements in docs/detection.md: the face-free
photos get no more false masks than measured, ordinary photos no more masks, a fixed WIDER subset keeps its
recall and precision. A change that makes any of them worse fails here before it reaches the harness."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from consumer.config import Settings
from consumer.detection.model_files import DEFAULT_MODELS_DIR
from consumer.detection.scan import ScanDetector
from consumer.detection.strategy import PRESETS, Preset
from consumer.evaluation.recall import Report, evaluate
from consumer.evaluation.suites import Suite, suite_images
from consumer.evaluation.walls import build_walls
from consumer.imaging.types import Box, Pixels
from tests.support import SAMPLES, SHARED_DATA, read_image

MARGIN = Settings().mask_margin
BEER_FACE = Box(2666, 961, 620, 620)  # the one person behind the bar


@pytest.fixture(scope="module")
def detector() -> ScanDetector:
    return ScanDetector(PRESETS[Preset.BALANCED], DEFAULT_MODELS_DIR)


def run(detector: ScanDetector, suite: Suite, limit: int = 0) -> Report:
    return evaluate(suite_images(suite, limit=limit), lambda p: [d.box for d in detector.detect(p)], MARGIN)


def test_face_free_photos_get_at_most_the_false_masks_measured(detector: ScanDetector) -> None:
    report = run(detector, Suite.NOFACES)
    assert report.images == 14
    assert report.detections == 0, report.per_image  # measured: none (verifier v1: 2; no verifier: 11 on 4)
    assert report.nonface_masked == 0  # (before the verifier: 2.4% of the area)


def test_the_beer_bar_gets_its_face_and_at_most_the_masks_measured(detector: ScanDetector) -> None:
    found = detector.detect(read_image(SHARED_DATA / "large" / "immich_craft-beer.jpg"))
    assert any(d.box.iou(BEER_FACE) > 0.6 for d in found), found
    # measured 3: the face and two spots of menu lettering, the second ("le", 31 px, p 0.36) proposed since the
    # 1/2-size pass sweeps the rest of the photo (verifier v5: 2, v4: 3, v3: 8; deface: 7; before the verifier: 71)
    assert len(found) <= 3, found


def test_the_portraits_get_at_most_the_masks_measured(detector: ScanDetector) -> None:
    portraits = sorted((SHARED_DATA / "large").glob("deepface_*.jpg"))
    assert len(portraits) == 15
    counts = {path.name: len(detector.detect(read_image(path))) for path in portraits}
    assert all(counts.values()), counts  # every portrait's face is masked
    # measured 17: their 16 faces and the blurred photographer behind img40, a real face 380 px tall (p 0.12; from
    # 128 px masked from 0.1) (verifier v5: 16; v4: 18, with the photographer and a spot on a gold dress)
    assert sum(counts.values()) <= 17, counts


def test_the_cat_gets_no_mask_and_the_astronaut_one(detector: ScanDetector) -> None:
    assert detector.detect(read_image(SAMPLES / "chelsea.png")) == []
    assert len(detector.detect(read_image(SAMPLES / "astronaut.png"))) == 1


def test_a_fixed_wider_subset_keeps_its_recall_and_precision(detector: ScanDetector) -> None:
    report = run(detector, Suite.FACES, limit=60)
    assert report.masked_share >= 0.54  # measured 56.2% on these 60 photos (before the sweep 53.5%; v4: 52.2%)
    assert report.unmatched / report.detections <= 0.26  # measured 23.6% (before the sweep 23.0%; v4: 22.5%)


def test_a_wall_of_small_faces_is_masked(detector: ScanDetector, tmp_path: Path) -> None:
    """A gallery of 16- to 24-px faces with none larger (a video call, a yearbook page): nothing at 1/4 size
    points the finer passes at it, and before the 1/2-size pass swept the rest of the photo not one was masked."""
    walls = build_walls(SHARED_DATA / "large", tmp_path, DEFAULT_MODELS_DIR, heights=(16, 20, 24))
    report = evaluate(walls, lambda p: [d.box for d in detector.detect(p)], MARGIN)
    assert report.by_bucket["16-32"][1] == 1579  # the 14 portraits' faces, cycled: 768, 475 and 336 of them
    # measured 89.2%: 77.9% of the 16-px faces, every 20- and 24-px one (before the sweep: none of them)
    assert report.masked_share >= 0.87
    assert report.unmatched <= 0.01 * report.detections  # measured: none of the 1,409 detections


def test_a_fixed_wider_subset_turned_gray_keeps_its_recall_and_precision(detector: ScanDetector) -> None:
    def gray(pixels: Pixels) -> Pixels:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)

    report = evaluate(suite_images(Suite.FACES, limit=60), lambda p: [d.box for d in detector.detect(gray(p))], MARGIN)
    assert report.masked_share >= 0.35  # measured 36.6% on these 60 photos (v5: 36.5%; untinted, v2: 21.3%)
    assert report.unmatched / report.detections <= 0.47  # measured 43.4% (v5: 42.9%; crowds: on all 400, 24.8%)


def test_every_face_gets_its_verification_and_a_request_may_ask_for_more_masks(detector: ScanDetector) -> None:
    pixels = read_image(SHARED_DATA / "large" / "immich_craft-beer.jpg")
    default = detector.detect(pixels)
    everything = detector.detect(pixels, 0.0)
    assert all(d.verification is not None and d.verification >= 0.2 for d in default)
    assert len(everything) > 5 * len(default)
