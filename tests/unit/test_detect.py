from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from consumer.detection.model_files import DEFAULT_MODELS_DIR, DETECTORS, MODEL_FILES, ModelKind
from consumer.detection.network import FaceDetector
from consumer.errors import SetupError
from consumer.imaging.decode import to_rgb8
from consumer.native_stderr import native_stderr_silenced
from tests.images import ASTRONAUT_FACE
from tests.support import FACES, SAMPLES, iou, read_image


@pytest.mark.parametrize("kind", list(DETECTORS))
def test_both_models_find_the_astronaut_and_nothing_in_the_cat(kind: ModelKind) -> None:
    with FaceDetector(kind, DEFAULT_MODELS_DIR, 0.5) as detector:
        [face] = detector.detect(to_rgb8(read_image(SAMPLES / "astronaut.png")))
        assert iou(face.box.as_tuple(), ASTRONAUT_FACE) > 0.6
        assert face.score > 0.8
        assert detector.detect(to_rgb8(read_image(SAMPLES / "chelsea.png"))) == []
        assert detector.model.name == MODEL_FILES[kind].name


def test_a_score_given_per_call_finds_what_a_detector_loaded_at_that_score_finds() -> None:
    """`ScanDetector` runs detectors that differ only in their score on one network: the score given with
    the call must give the very faces and boxes a detector of its own would (the score also decides which
    candidates the suppression merges). Tiles of a crowd photo, at the scores `balanced` uses."""
    photo = to_rgb8(read_image(FACES / "images" / "1_Handshaking_Handshaking_1_579.jpg"))
    tiles = [photo[y : y + 128, x : x + 128] for y in range(0, photo.shape[0] - 128, 96) for x in range(0, 768, 96)]
    with FaceDetector(ModelKind.SHORT_RANGE, DEFAULT_MODELS_DIR, 0.1) as shared:
        for score in (0.1, 0.3, 0.5):
            with FaceDetector(ModelKind.SHORT_RANGE, DEFAULT_MODELS_DIR, score) as own:
                found = [own.detect(tile) for tile in tiles]
                assert [shared.detect(tile, score) for tile in tiles] == found
                assert sum(map(len, found)) > 0  # there was something to find
        assert sum(len(shared.detect(tile, 0.3)) for tile in tiles) < sum(len(shared.detect(tile)) for tile in tiles)


def test_an_altered_model_is_refused(tmp_path: Path) -> None:
    model = MODEL_FILES[ModelKind.FULL_RANGE]
    altered = bytearray((DEFAULT_MODELS_DIR / model.filename).read_bytes())
    altered[1000] ^= 0xFF
    (tmp_path / model.filename).write_bytes(bytes(altered))
    with pytest.raises(SetupError, match="sha256"):
        FaceDetector(ModelKind.FULL_RANGE, tmp_path, 0.5)


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_MODELS_DIR / MODEL_FILES[ModelKind.SHORT_RANGE].filename, tmp_path)
    with pytest.raises(SetupError, match="missing"):
        FaceDetector(ModelKind.FULL_RANGE, tmp_path, 0.5)


def test_silencing_native_stderr_from_overlapping_threads_restores_it() -> None:
    """First in, first out: the order that left fd 2 on /dev/null when each thread saved and restored it alone."""
    before = os.fstat(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with native_stderr_silenced():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with native_stderr_silenced():
            second_in.set()
            first_out.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
