"""The verifier: is a candidate the detector proposed really a face?

BlazeFace at the low thresholds small faces need also fires on beer taps,
textures and animals. The verifier looks again at each candidate where that can
be answered, in stages: each stage is a small fitted logistic model
(`VerifierModel`) giving the probability that the candidate is a face, and each
look after the first stage is taken only where the stage before it is in doubt
(`LOOKS`, cheapest first), so a candidate costs what its case needs.

- The first stage weighs what costs nothing to measure: the detector's own score,
  the candidate's size, the colour of its middle and the roll of its eye line. A
  clear face of a crowd (a wall of them: most of its candidates) or a faint speck
  is decided there.
- Where the first stage is in doubt, FaceMesh, on a square crop 1.5 times the
  candidate's longer side (as MediaPipe's face mesh pipeline crops a face),
  turned upright from the detector's eye keypoints when it has them and resized
  to 192 px: its face-presence score says whether a face fills the crop. It separates faces
  from the rest well for large candidates and poorly for 16-32 px ones, where the
  detector's score is the better signal, so the model weighs both, size-aware.
- Where that is in doubt (about one candidate in four), MediaPipe's selfie
  segmentation says how much of the candidate and of a head-and-shoulders crop
  around it is a person (`PersonMask`). A real face in a crowd 20 px tall still
  sits on a body, while menu lettering, a carved pattern or a tap handle sits on
  none: the signal FaceMesh cannot give for small candidates.
- Where that is still in doubt (about one in seven), the full-range detector
  looks at a crop six times the candidate's size (another scale, with the
  surroundings) for a face there again.

The model is fitted by `ops/fit_verifier.py` on one half of `wider-tune/` and
ships as a small versioned JSON file beside this module, pinned by its sha256
like the networks: an altered file is refused (`ModelFileError`).
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from consumer.detection.colour import colour_features
from consumer.detection.crops import padded_square, rgb_view
from consumer.detection.model_files import MODEL_FILES, ModelKind, verified_model_path
from consumer.detection.network import FaceDetector
from consumer.errors import ModelFileError
from consumer.imaging.decode import to_rgb8
from consumer.imaging.types import Box, Detection, Pixels, Point
from consumer.native_stderr import native_stderr_silenced

VERIFIER_FILE = Path(__file__).with_name("verifier-v7.json")
VERIFIER_SHA256 = "222a6cb7becbbac689e8c5d261729ccd55a6fffb93bf79a237c1f9826ec75d94"
ZOOM = 1.5  # FaceMesh's crop side, in multiples of the candidate's longer side (a second crop at 2.0 added nothing)
LOGIT_CLIP = 12.0  # scores are clipped to [1/(1+e^12), 1-1/(1+e^12)] before their logit

# The features the model may weigh, by name (`candidate_features`). `score`: the detector's score as a logit;
# `relook`: the full-range detector's score for the candidate on a crop 6 times its size, as a logit;
# `presence`: FaceMesh's presence logit on the upright crop; `log_height`: log2 of its height in pixels; `skin`
# and `sat`: the colour of its middle (`colour_features`); `person` and `around`: the share of the candidate
# and of the head-and-shoulders crop around it that the selfie segmentation calls a person (`PersonMask`);
# `roll`: how far the detector's eye line is from level, in right angles (0 level, 1 on its side, 2
# upside down): faces in photos mostly stand upright, glyphs and textures the detector takes for one do not.
# Products of two are named `a*b`. (FaceMesh's eyes
# against the detector's, the detections merged into a candidate, its aspect and a second zoom were measured
# and added nothing: docs/detection.md.)
BASE_FEATURES = ("bias", "score", "relook", "presence", "log_height", "skin", "sat", "person", "around", "roll")
# The looks taken where a stage is in doubt, cheapest first, and the features each adds for the stage after it:
# `mesh`, FaceMesh's presence; `person`, the selfie segmentation's shares; `relook`, the full-range detector's score.
LOOKS: dict[str, tuple[str, ...]] = {"mesh": ("presence",), "person": ("person", "around"), "relook": ("relook",)}


@dataclass(frozen=True)
class Stage:
    """A fitted logistic model over named features: p = sigmoid(sum(weight * feature))."""

    features: tuple[str, ...]
    weights: tuple[float, ...]

    def probability(self, values: dict[str, float]) -> float:
        z = sum(w * _feature(name, values) for name, w in zip(self.features, self.weights, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# Fitted stages: the first weighs what the detector and the colour say; each later one also weighs what one more
# look (`LOOKS`, in order) says, and decides a candidate the stage before it left in doubt.
Stages = tuple[Stage, ...]


@dataclass(frozen=True)
class VerifierModel:
    """The stages for colour photos, and those for monochrome ones (fitted on gray copies seen through the
    detector's tint, `consumer/detection/colour.py`), and for each look the probabilities in doubt before it,
    where it is taken."""

    version: str
    colour: Stages
    monochrome: Stages
    doubt: dict[str, tuple[float, float]]

    def stages(self, monochrome: bool) -> Stages:
        return self.monochrome if monochrome else self.colour

    def in_doubt(self, look: str, probability: float) -> bool:
        """Whether look `look` is taken for a candidate the stage before it gives `probability`."""
        low, high = self.doubt[look]
        return low <= probability <= high


def _feature(name: str, values: dict[str, float]) -> float:
    if "*" in name:
        left, right = name.split("*", 1)
        return values[left] * values[right]
    return values[name]


def load_verifier_model(path: Path = VERIFIER_FILE, sha256: str = VERIFIER_SHA256) -> VerifierModel:
    """The fitted model in `path`, after checking its sha256. Raises ModelFileError when missing or altered."""
    if not path.is_file():
        raise ModelFileError(f"verifier model {path} is missing: run `ops/fit_verifier.py`")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelFileError(f"verifier model {path} has sha256 {digest}, expected {sha256}: it was altered")
    entry = json.loads(data)
    if set(entry["doubt"]) != set(LOOKS):
        raise ModelFileError(f"verifier model {path} has doubt bands for {sorted(entry['doubt'])}, not {list(LOOKS)}")
    doubt = {look: (float(entry["doubt"][look][0]), float(entry["doubt"][look][1])) for look in LOOKS}
    return VerifierModel(entry["version"], _stages(path, entry["colour"]), _stages(path, entry["monochrome"]), doubt)


def _stages(path: Path, entry: dict[str, list[dict[str, list[object]]]]) -> Stages:
    stages = tuple(_stage(path, stage) for stage in entry["stages"])
    if len(stages) != 1 + len(LOOKS):
        raise ModelFileError(f"verifier model {path} has {len(stages)} stages, not {1 + len(LOOKS)}")
    looks = list(LOOKS.values())
    for index, stage in enumerate(stages):
        weighed = {part for name in stage.features for part in name.split("*")}
        if later := weighed & {feature for look in looks[index:] for feature in look}:
            raise ModelFileError(f"verifier model {path}: stage {index + 1} weighs {sorted(later)}, looked at later")
    return stages


def _stage(path: Path, entry: dict[str, list[object]]) -> Stage:
    features, weights = tuple(str(f) for f in entry["features"]), tuple(float(str(w)) for w in entry["weights"])
    if len(features) != len(weights) or not features:
        raise ModelFileError(f"verifier model {path} has {len(features)} features and {len(weights)} weights")
    if unknown := {part for name in features for part in name.split("*")} - set(BASE_FEATURES):
        raise ModelFileError(f"verifier model {path} weighs features this version does not compute: {sorted(unknown)}")
    return Stage(features, weights)


def logit(score: float) -> float:
    bound = 1 / (1 + math.exp(LOGIT_CLIP))
    score = min(max(score, bound), 1 - bound)
    return math.log(score / (1 - score))


def candidate_features(detection: Detection, colour: dict[str, float]) -> dict[str, float]:
    """The values of the first stage's features for `detection`, given the colour of its middle
    (`colour_features`): what is known before any look."""
    return {
        "bias": 1.0,
        "score": logit(detection.score),
        "log_height": math.log2(max(detection.box.h, 1)),
        "skin": colour["skin"],
        "sat": colour["sat"],
        "roll": abs(upright_angle(detection.eyes)) / 90,
    }


def upright_angle(eyes: tuple[Point, Point] | None) -> float:
    """Degrees to turn a crop by so the eyes (the subject's right eye, then the left, as BlazeFace gives them)
    lie level; 0 without keypoints. As MediaPipe's face mesh pipeline computes the rotation of its crop."""
    if eyes is None:
        return 0.0
    right, left = eyes
    return math.degrees(math.atan2(left.y - right.y, left.x - right.x))


def crop_transform(centre: Point, span: float, angle: float, side: int) -> np.ndarray:
    """The affine map (2x3) from image pixels to the `side`-px crop of the `span`-px square around `centre`,
    turned by `angle` degrees (counter-clockwise: the image turns clockwise)."""
    matrix = cv2.getRotationMatrix2D((centre.x, centre.y), angle, side / span)
    matrix[0, 2] += side / 2 - centre.x
    matrix[1, 2] += side / 2 - centre.y
    return matrix


def crop_square(pixels: Pixels, centre: Point, span: float, angle: float, side: int) -> np.ndarray:
    """The `span`-px square of `pixels` around `centre`, turned by `angle` degrees (`crop_transform`), resized
    to `side` px, as 8-bit RGB; black beyond the image's border. Only the region the square can touch is
    converted, so a crop of a 24-megapixel photo costs what the crop costs."""
    height, width = pixels.shape[:2]
    reach = span * 0.75  # half the diagonal of the square, with room: what a turned square can touch
    x0, y0 = max(0, math.floor(centre.x - reach)), max(0, math.floor(centre.y - reach))
    x1, y1 = min(width, math.ceil(centre.x + reach)), min(height, math.ceil(centre.y + reach))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((side, side, 3), np.uint8)
    region = to_rgb8(pixels[y0:y1, x0:x1])
    matrix = crop_transform(centre, span, angle, side)
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)  # the region's pixels are offset by (x0, y0)
    interpolation = cv2.INTER_AREA if side < span else cv2.INTER_LINEAR
    return cv2.warpAffine(region, matrix, (side, side), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)


class CropNetwork:
    """One of MediaPipe's networks on square 8-bit RGB crops, which it takes in [0, 1]: loaded after the sha256
    check, warmed up, and run for the one output its subclass reads. One per thread, like the detectors."""

    def __init__(self, kind: ModelKind, models_dir: Path) -> None:
        """Raises ModelFileError when the model file is missing or altered."""
        path = verified_model_path(kind, models_dir)
        self.side = MODEL_FILES[kind].input_side
        with native_stderr_silenced():
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._interpreter.allocate_tensors()
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_index = self.output_index(self._interpreter.get_output_details())
        self._input = np.zeros((1, self.side, self.side, 3), np.float32)
        self.run(np.zeros((self.side, self.side, 3), np.uint8))  # the first inference prepares the delegate

    def output_index(self, outputs: list[dict[str, Any]]) -> int:
        """The index of the output this network is run for (default: its first)."""
        return int(outputs[0]["index"])

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """That output for a `side`-px square 8-bit RGB crop."""
        np.multiply(rgb, np.float32(1 / 255), out=self._input[0], casting="unsafe")
        with native_stderr_silenced():
            self._interpreter.set_tensor(self._input_index, self._input)
            self._interpreter.invoke()
        output: np.ndarray = self._interpreter.get_tensor(self._output_index)
        return output

    def close(self) -> None:
        vars(self).pop("_interpreter", None)


class FaceMesh(CropNetwork):
    """FaceMesh on 192-px crops: the face-presence logit."""

    def __init__(self, models_dir: Path) -> None:
        """Raises ModelFileError when the model file is missing or altered."""
        super().__init__(ModelKind.FACE_MESH, models_dir)

    def output_index(self, outputs: list[dict[str, Any]]) -> int:
        sizes = {int(np.prod(o["shape"])): int(o["index"]) for o in outputs}
        return sizes[1]  # the other output, 468 landmarks, is not read

    def presence(self, rgb: np.ndarray) -> float:
        """The face-presence logit of a `side`-px square 8-bit RGB crop (positive: a face fills it)."""
        return float(self.run(rgb).reshape(-1)[0])


PERSON_SPAN = 4.0  # the person crop's side, in multiples of the candidate's longer side
PERSON_DROP = 0.75  # ... centred this many of its sides below the candidate's centre: head and shoulders


class PersonMask(CropNetwork):
    """MediaPipe's selfie segmentation on a head-and-shoulders crop around a candidate."""

    def __init__(self, models_dir: Path) -> None:
        """Raises ModelFileError when the model file is missing or altered."""
        super().__init__(ModelKind.SELFIE_SEGMENTATION, models_dir)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """The person probability of each pixel of a `side`-px square 8-bit RGB crop."""
        mask: np.ndarray = self.run(rgb)[0, :, :, 0]
        return mask

    def shares(self, pixels: Pixels, box: Box) -> tuple[float, float]:
        """The mean person probability over `box` and over the whole crop around it (`person_crop`; black
        beyond the image's border)."""
        centre, span = person_crop(box)
        mask = self.mask(crop_square(pixels, centre, span, 0.0, self.side))
        rows, columns = box_in_crop(box, centre, span, self.side)
        inside = mask[rows, columns]
        return float(inside.mean()) if inside.size else 0.0, float(mask.mean())


def person_crop(box: Box) -> tuple[Point, float]:
    """The centre and side of the head-and-shoulders square the person mask looks at for `box`: `PERSON_SPAN`
    times its longer side, centred `PERSON_DROP` of that side below its centre."""
    size = max(box.w, box.h)
    return Point(box.centre.x, box.centre.y + PERSON_DROP * size), PERSON_SPAN * size


def box_in_crop(box: Box, centre: Point, span: float, side: int) -> tuple[slice, slice]:
    """The rows and columns `box` covers in the `side`-px crop of the `span`-px square around `centre`, cut
    to the crop (at least one pixel each, so that a box at the crop's edge still reads the edge)."""
    scale = side / span  # crop pixels per image pixel
    x0 = side / 2 + (box.x - centre.x) * scale
    y0 = side / 2 + (box.y - centre.y) * scale
    rows = slice(max(0, math.floor(y0)), max(1, math.ceil(y0 + box.h * scale)))
    columns = slice(max(0, math.floor(x0)), max(1, math.ceil(x0 + box.w * scale)))
    return rows, columns


def presence_of(mesh: FaceMesh, pixels: Pixels, detection: Detection) -> float:
    """FaceMesh's presence logit on the crop around `detection`, `ZOOM` times its longer side, turned upright
    from its eyes."""
    box: Box = detection.box
    return mesh.presence(
        crop_square(pixels, box.centre, ZOOM * max(box.w, box.h), upright_angle(detection.eyes), mesh.side)
    )


RELOOK_ZOOM = 6.0  # the relook's crop side, in multiples of the candidate's longer side
RELOOK_MIN_SCORE = 0.02  # the relook's detector keeps candidates from this score: a weak one still counts
RELOOK_CENTRE = 0.3  # a relooked face is the candidate when its centre is this share of its side from the centre


def relook_score(detector: FaceDetector, pixels: Pixels, box: Box) -> float:
    """The best score the full-range detector gives a face centred on `box` in a square crop `RELOOK_ZOOM`
    times its size (padded black beyond the border) fitted into its input: the candidate seen at another
    scale and with its surroundings, where a face is found again and most textures are not. 0: not found."""
    span = max(8, round(RELOOK_ZOOM * max(box.w, box.h)))
    x0, y0 = round(box.centre.x - span / 2), round(box.centre.y - span / 2)
    crop = rgb_view(padded_square(pixels, x0, y0, span), detector.side / span)
    factor = crop.shape[1] / span
    tolerance = RELOOK_CENTRE * max(box.w, box.h)
    best = 0.0
    for found in detector.detect(crop):
        centre = found.box.centre
        if (
            abs(x0 + centre.x / factor - box.centre.x) < tolerance
            and abs(y0 + centre.y / factor - box.centre.y) < tolerance
        ):
            best = max(best, found.score)
    return best


class Looker:
    """The networks the verifier looks at a candidate with: FaceMesh, the selfie segmentation and the full-range
    detector. One per thread; never shared."""

    def __init__(self, models_dir: Path) -> None:
        """Raises ModelFileError when a model file is missing or altered (those loaded already are closed)."""
        with ExitStack() as loaded:
            self._mesh = FaceMesh(models_dir)
            loaded.callback(self._mesh.close)
            self._person = PersonMask(models_dir)
            loaded.callback(self._person.close)
            self._relook = FaceDetector(ModelKind.FULL_RANGE, models_dir, RELOOK_MIN_SCORE)
            loaded.callback(self._relook.close)
            self._loaded = loaded.pop_all()

    def features(self, pixels: Pixels, detection: Detection) -> dict[str, float]:
        """The first stage's features of `detection` in `pixels` (no network is run)."""
        return candidate_features(detection, colour_features(pixels, detection.box))

    def look(self, name: str, pixels: Pixels, detection: Detection) -> dict[str, float]:
        """The features look `name` of `LOOKS` adds: `mesh`, FaceMesh's presence logit on the upright crop;
        `person`, the person shares of the candidate and around it; `relook`, the full-range detector's score
        for it, as a logit."""
        if name == "mesh":
            return {"presence": presence_of(self._mesh, pixels, detection)}
        if name == "person":
            person, around = self._person.shares(pixels, detection.box)
            return {"person": person, "around": around}
        if name == "relook":
            return {"relook": logit(relook_score(self._relook, pixels, detection.box))}
        raise ValueError(f"no look named {name!r}")

    def close(self) -> None:
        self._loaded.close()


class Verifier:
    """Scores candidates: the probability that each is a face. Built once per thread; never shared."""

    def __init__(self, models_dir: Path, model: VerifierModel) -> None:
        """Raises ModelFileError when a model file is missing or altered."""
        self.model = model
        self._looker = Looker(models_dir)

    def probability(self, pixels: Pixels, detection: Detection, monochrome: bool) -> float:
        """The probability that `detection` is a face, looked at in `pixels` (the detector's view: a monochrome
        photo's tinted, `detector_view`) with the stages for that kind of photo."""
        first, *later = self.model.stages(monochrome)
        values = self._looker.features(pixels, detection)
        probability = first.probability(values)
        for look, stage in zip(LOOKS, later, strict=True):
            if not self.model.in_doubt(look, probability):
                break
            values.update(self._looker.look(look, pixels, detection))
            probability = stage.probability(values)
        return probability

    def close(self) -> None:
        self._looker.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
