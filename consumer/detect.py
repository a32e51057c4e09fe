"""One BlazeFace model through MediaPipe's Tasks FaceDetector: one image in, faces out.

A `FaceDetector` loads its model once (after the sha256 check) and is closed
explicitly. `consumer/scan.py` owns one per model and thread; it is never shared
between threads.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np

from consumer.errors import SetupError
from consumer.image_types import Box, Detection
from consumer.mediapipe_runtime import BaseOptions, mp, vision
from consumer.model_files import MODEL_FILES, ModelFileError, ModelKind, verified_model_path


class _StderrSilencer:
    """Process-wide: the first thread to enter redirects fd 2, the last to leave restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = -1

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                sys.stderr.flush()
                self._saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                os.dup2(self._saved, 2)
                os.close(self._saved)


_SILENCER = _StderrSilencer()


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: LiteRT prints dozens of INFO/WARNING lines
    while a model loads and on the first inference, and a plain-text warning from an
    inference now and then, which would break the worker's one-JSON-object-per-line log.
    Python's own log lines and tracebacks are not lost meanwhile: they go to a copy of
    descriptor 2 (`consumer/logs.py`). Safe when processing threads run at the same time."""
    _SILENCER.enter()
    try:
        yield
    finally:
        _SILENCER.leave()


class FaceDetector:
    """Finds faces in RGB images with one BlazeFace model."""

    def __init__(self, kind: ModelKind, models_dir: Path, min_confidence: float) -> None:
        """Load the model. Raises SetupError when its file is missing or altered."""
        try:
            path = verified_model_path(kind, models_dir)
        except ModelFileError as exc:
            raise SetupError(str(exc)) from exc
        model = MODEL_FILES[kind]
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
        )
        with native_stderr_silenced():
            self._detector = vision.FaceDetector.create_from_options(options)
            self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
        self.model = model

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an 8-bit RGB image, boxes clipped to it, best score first."""
        height, width = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        found = []
        with native_stderr_silenced():  # LiteRT warns in plain text from inside inference, now and then
            detections = self._detector.detect(image).detections
        for detection in detections:
            bb = detection.bounding_box
            box = Box(bb.origin_x, bb.origin_y, bb.width, bb.height).clipped(width, height)
            if box.w > 0 and box.h > 0:
                found.append(Detection(box=box, score=float(detection.categories[0].score)))
        return sorted(found, key=lambda d: d.score, reverse=True)

    def close(self) -> None:
        with native_stderr_silenced():
            self._detector.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
