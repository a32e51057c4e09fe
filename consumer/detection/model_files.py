"""The model files: where they come from, their pinned checksums, and the check.

The models (the two BlazeFace detectors, and FaceMesh and the selfie segmentation,
which the verifier runs on each candidate face) ship inside the mediapipe 0.10.21 wheel; `ops/fetch_models.py`
extracts them at set-up time. The worker refuses to start when a file is missing or its
sha256 differs from the pin here (`ModelFileError`, a `SetupError`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from consumer.errors import ModelFileError

SOURCE_WHEEL = "mediapipe==0.10.21"
SOURCE_WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
SOURCE_WHEEL_TAGS = ("cp311", "manylinux_2_28_x86_64")
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


class ModelKind(StrEnum):
    """Which network: a BlazeFace variant (full range sees faces far from the camera), or one the verifier runs."""

    FULL_RANGE = "full_range"
    SHORT_RANGE = "short_range"
    FACE_MESH = "face_mesh"  # 468 landmarks and a face-presence score on a 192-px crop: the verifier's
    SELFIE_SEGMENTATION = "selfie_segmentation"  # a person mask of a 256-px crop: the verifier's


DETECTORS = (ModelKind.FULL_RANGE, ModelKind.SHORT_RANGE)  # the BlazeFace variants


@dataclass(frozen=True)
class ModelFile:
    kind: ModelKind
    name: str
    filename: str
    sha256: str
    input_side: int  # the square input the network sees; the detector fits every image into it
    wheel_dir: str = "mediapipe/modules/face_detection"  # where the wheel holds it


MODEL_FILES: dict[ModelKind, ModelFile] = {
    ModelKind.FULL_RANGE: ModelFile(
        ModelKind.FULL_RANGE,
        "blazeface-full-range-sparse",
        "face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        192,
    ),
    ModelKind.SHORT_RANGE: ModelFile(
        ModelKind.SHORT_RANGE,
        "blazeface-short-range",
        "face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        128,
    ),
    ModelKind.FACE_MESH: ModelFile(
        ModelKind.FACE_MESH,
        "facemesh",
        "face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        192,
        "mediapipe/modules/face_landmark",
    ),
    ModelKind.SELFIE_SEGMENTATION: ModelFile(
        ModelKind.SELFIE_SEGMENTATION,
        "selfie-segmentation",
        "selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        256,
        "mediapipe/modules/selfie_segmentation",
    ),
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified_model_path(kind: ModelKind, models_dir: Path) -> Path:
    """The path of `kind`'s model file in `models_dir`, after checking its sha256.

    Raises ModelFileError when the file is missing or altered.
    """
    model = MODEL_FILES[kind]
    path = models_dir / model.filename
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing: run `make models`")
    digest = sha256_of(path)
    if digest != model.sha256:
        raise ModelFileError(
            f"model file {path} has sha256 {digest}, expected {model.sha256}: "
            "it was altered or is another model; run `make models` to fetch the pinned one"
        )
    return path
