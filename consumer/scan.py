"""The detect stage as the pipeline runs it: a strategy's passes over one image.

`ScanDetector` is built once per worker thread (like the `FaceDetector`s it owns,
one per model the strategy uses) and is never shared between threads.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import cv2
import mediapipe as mp
import numpy as np

from consumer.detect import FaceDetector
from consumer.image_types import Detection
from consumer.merge import suppress_overlaps
from consumer.model_files import MODEL_FILES
from consumer.strategy import Pass, Strategy
from consumer.tiling import to_source, windows
from schemas import ModelInfo


class ScanDetector:
    """Finds faces in RGB images by running every pass of a `Strategy`."""

    def __init__(self, strategy: Strategy, models_dir: Path) -> None:
        """Load each model the strategy uses. Raises SetupError when a model file is missing or altered."""
        self.strategy = strategy
        self._detectors: dict[str, FaceDetector] = {}
        try:
            for model in strategy.models:
                self._detectors[model] = FaceDetector(model, models_dir, strategy.min_score(model))
        except BaseException:
            self.close()
            raise
        files = [MODEL_FILES[model] for model in strategy.models]
        self.info = ModelInfo(
            name="+".join(f.name for f in files),
            version=f"mediapipe-{mp.__version__}/" + "+".join(f"sha256:{f.sha256[:12]}" for f in files),
            min_confidence=min(p.min_score for p in strategy.passes),
            preset=strategy.preset.value,
            passes=[p.describe() for p in strategy.passes],
        )

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an 8-bit RGB image, boxes clipped to it, best score first."""
        found: list[Detection] = []
        resized: dict[float, np.ndarray] = {}
        for scan_pass in self.strategy.passes:
            if scan_pass.scale is None:
                found += self._whole(scan_pass, rgb)
            else:
                if scan_pass.scale not in resized:
                    resized[scan_pass.scale] = _resize(rgb, scan_pass.scale)
                found += self._tiled(scan_pass, resized[scan_pass.scale], rgb.shape[1], rgb.shape[0])
        return suppress_overlaps(found, self.strategy.merge_iou)

    def _whole(self, scan_pass: Pass, rgb: np.ndarray) -> list[Detection]:
        return [d for d in self._detectors[scan_pass.model].detect(rgb) if d.score >= scan_pass.min_score]

    def _tiled(self, scan_pass: Pass, image: np.ndarray, width: int, height: int) -> list[Detection]:
        """Run the pass's model on each tile of `image` (the source resized by the pass's scale)."""
        assert scan_pass.scale is not None
        detector = self._detectors[scan_pass.model]
        side = MODEL_FILES[scan_pass.model].input_side
        found = []
        for window in windows(image.shape[1], image.shape[0], side, self.strategy.tile_overlap):
            tile = image[window.y : window.y + side, window.x : window.x + side]
            for detection in detector.detect(tile):
                too_big = scan_pass.max_face is not None and detection.box.h > scan_pass.max_face
                if detection.score < scan_pass.min_score or too_big:
                    continue
                box = to_source(detection.box, window, scan_pass.scale, width, height)
                if box.w > 0 and box.h > 0:
                    found.append(Detection(box=box, score=detection.score))
        return found

    def close(self) -> None:
        for detector in self._detectors.values():
            detector.close()
        self._detectors.clear()

    def __enter__(self) -> ScanDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))
