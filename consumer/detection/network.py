"""One BlazeFace model run by LiteRT: one image in, faces out.

The models are MediaPipe's (from the mediapipe wheel, sha256-pinned); LiteRT is the
TensorFlow Lite runtime MediaPipe itself embeds, and `consumer/detection/blazeface.py`
decodes the network's outputs as MediaPipe's face detector graph does. Against
MediaPipe's Tasks FaceDetector on the same tiles, this finds the same faces with
the same scores, without the Tasks graph's own overhead on every tile of every pass
(the per-tile times: docs/development.md). A `FaceDetector`
loads its model once (after the sha256 check) and is closed explicitly.
`consumer/detection/scan.py` owns one per model and thread; it is never shared between
threads (LiteRT releases the GIL while the network runs).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from consumer.detection.blazeface import anchor_centres, check_input_side, decode, score_logit
from consumer.detection.model_files import MODEL_FILES, ModelKind, verified_model_path
from consumer.errors import SetupError
from consumer.imaging.types import Box, Detection, Point
from consumer.native_stderr import native_stderr_silenced

RUNTIME = f"litert-{version('ai-edge-litert')}"


class FaceDetector:
    """Finds faces in RGB images with one BlazeFace model."""

    def __init__(self, kind: ModelKind, models_dir: Path, min_confidence: float, side: int | None = None) -> None:
        """Load the model, to run on `side`-px squares (default: the network's own input; short range can
        run on larger ones). Raises SetupError when its file is missing or altered, ValueError for a side
        the network cannot take."""
        self.model = MODEL_FILES[kind]
        self.side = side or self.model.input_side
        check_input_side(kind, self.side)
        path = verified_model_path(kind, models_dir)  # raises ModelFileError, a SetupError
        with native_stderr_silenced():  # LiteRT announces its CPU delegate in plain text
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._input_index = self._interpreter.get_input_details()[0]["index"]
            self._interpreter.resize_tensor_input(self._input_index, [1, self.side, self.side, 3], strict=False)
            self._interpreter.allocate_tensors()
        outputs = {int(o["shape"][-1]): o for o in self._interpreter.get_output_details()}
        self._regressors_index, self._logits_index = outputs[16]["index"], outputs[1]["index"]
        self._input = np.zeros((1, self.side, self.side, 3), np.float32)
        self._centres = anchor_centres(kind, self.side)
        if int(outputs[1]["shape"][1]) != len(self._centres):
            raise SetupError(f"{self.model.filename} gives {outputs[1]['shape'][1]} anchors, not {len(self._centres)}")
        self._min_logit = score_logit(min_confidence)
        self.detect(np.zeros((self.side, self.side, 3), np.uint8))  # the first inference prepares the delegate

    def detect(self, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Faces in an 8-bit RGB image scoring at least `min_score` (default: the detector's own), best score
        first; boxes in whole pixels as MediaPipe reports them (corner and size truncated; the presets' size
        limits were tuned on those), clipped to the image. The score also decides which candidates the
        suppression merges, so a face's box depends on it.

        An image that is not the network's square input is fitted into it as MediaPipe does it: resized
        to its longer side, keeping its aspect ratio, centred, and padded black."""
        height, width = rgb.shape[:2]
        side = self.side
        scale = side / max(width, height)
        fitted_w, fitted_h = max(1, round(width * scale)), max(1, round(height * scale))
        left, top = (side - fitted_w) // 2, (side - fitted_h) // 2
        if (fitted_w, fitted_h) != (width, height):
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (fitted_w, fitted_h), interpolation=shrink)
        if (fitted_w, fitted_h) != (side, side):
            self._input.fill(-1.0)
        window = self._input[0, top : top + fitted_h, left : left + fitted_w]
        np.multiply(rgb, np.float32(1 / 127.5), out=window, casting="unsafe")
        window -= 1.0  # the network takes [-1, 1]
        with native_stderr_silenced():  # a runtime's plain-text warning must not reach the JSON log
            self._interpreter.set_tensor(self._input_index, self._input)
            self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._logits_index)[0, :, 0]
        regressors = self._interpreter.get_tensor(self._regressors_index)[0]
        found = []
        min_logit = self._min_logit if min_score is None else score_logit(min_score)
        for face in decode(regressors, logits, self._centres, min_logit):
            x0, y0 = (face.x0 - left) / scale, (face.y0 - top) / scale
            box = Box(int(x0), int(y0), int((face.x1 - face.x0) / scale), int((face.y1 - face.y0) / scale))
            box = box.clipped(width, height)
            if box.w > 0 and box.h > 0:
                rx, ry, lx, ly = face.eyes
                eyes = (Point((rx - left) / scale, (ry - top) / scale), Point((lx - left) / scale, (ly - top) / scale))
                found.append(Detection(box=box, score=face.score, eyes=eyes))
        return found

    def close(self) -> None:
        """Release the interpreter and its buffers; the detector cannot run after this."""
        vars(self).pop("_interpreter", None)

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
