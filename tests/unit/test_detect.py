from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from consumer.decode import to_rgb8
from consumer.detect import FaceDetector, native_stderr_silenced
from consumer.errors import SetupError
from consumer.model_files import DEFAULT_MODELS_DIR, MODEL_FILES, ModelKind
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, iou, read_image


@pytest.mark.parametrize("kind", list(ModelKind))
def test_both_models_find_the_astronaut_and_nothing_in_the_cat(kind: ModelKind) -> None:
    with FaceDetector(kind, DEFAULT_MODELS_DIR, 0.5) as detector:
        [face] = detector.detect(to_rgb8(read_image(SAMPLES / "astronaut.png")))
        assert iou(face.box.as_tuple(), ASTRONAUT_FACE) > 0.6
        assert face.score > 0.8
        assert detector.detect(to_rgb8(read_image(SAMPLES / "chelsea.png"))) == []
        assert detector.model.name == MODEL_FILES[kind].name


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
