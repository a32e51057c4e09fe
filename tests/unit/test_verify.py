"""The verifier: crops turned upright from the eyes, borders, FaceMesh's presence, the person mask, and its
pinned files."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from consumer.detection.model_files import DEFAULT_MODELS_DIR, MODEL_FILES, ModelKind
from consumer.detection.verify import (
    LOOKS,
    VERIFIER_FILE,
    CropNetwork,
    FaceMesh,
    PersonMask,
    Verifier,
    box_in_crop,
    candidate_features,
    crop_square,
    load_verifier_model,
    person_crop,
    upright_angle,
)
from consumer.errors import ModelFileError
from consumer.imaging.types import Box, Detection, Point
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, read_image


def test_level_eyes_need_no_turn_and_a_tilted_pair_is_measured_from_the_subjects_right_eye() -> None:
    assert upright_angle(None) == 0.0
    assert upright_angle((Point(10, 20), Point(30, 20))) == 0.0
    assert upright_angle((Point(10, 20), Point(30, 40))) == pytest.approx(45.0)  # the left eye lower: head tilted
    assert upright_angle((Point(10, 20), Point(30, 0))) == pytest.approx(-45.0)


@pytest.mark.parametrize(
    ("eyes", "roll"),
    [
        (None, 0.0),  # no keypoints: taken as upright
        ((Point(10, 20), Point(30, 20)), 0.0),  # level
        ((Point(10, 20), Point(30, 40)), 0.5),  # tilted 45 degrees, either way
        ((Point(30, 20), Point(10, 40)), 1.5),  # the right eye right of the left one, and lower: 135 degrees
        ((Point(20, 10), Point(20, 30)), 1.0),  # one above the other: a face on its side, or an 8
        ((Point(30, 20), Point(10, 20)), 2.0),  # upside down
    ],
)
def test_the_roll_feature_is_how_far_the_eye_line_is_from_level_in_right_angles(
    eyes: tuple[Point, Point] | None, roll: float
) -> None:
    detection = Detection(Box(0, 0, 40, 40), 0.6, eyes=eyes)
    values = candidate_features(detection, colour={"skin": 0.5, "sat": 0.3})
    assert values["roll"] == pytest.approx(roll)


def dots(tilt_degrees: float) -> tuple[np.ndarray, Point, Point]:
    """A gray image with a red dot (the subject's right eye) and a blue one, on a line tilted by `tilt_degrees`."""
    image = np.full((200, 300, 3), 128, np.uint8)
    centre, reach = Point(150, 100), 30
    t = math.radians(tilt_degrees)
    right = Point(centre.x - reach * math.cos(t), centre.y - reach * math.sin(t))
    left = Point(centre.x + reach * math.cos(t), centre.y + reach * math.sin(t))
    cv2.circle(image, (round(right.x), round(right.y)), 4, (0, 0, 255), -1)  # BGR: red
    cv2.circle(image, (round(left.x), round(left.y)), 4, (255, 0, 0), -1)
    return image, right, left


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("tilt", [0.0, 30.0, -50.0, 120.0])
def test_a_crop_turned_by_the_upright_angle_has_the_eyes_level_right_eye_on_the_left(tilt: float) -> None:
    image, right, left = dots(tilt)
    crop = crop_square(image, Point(150, 100), 120, upright_angle((right, left)), 192)  # RGB out
    assert crop.shape == (192, 192, 3)
    red_x, red_y = centroid((crop[:, :, 0] > 200) & (crop[:, :, 2] < 80))
    blue_x, blue_y = centroid((crop[:, :, 2] > 200) & (crop[:, :, 0] < 80))
    assert abs(red_y - blue_y) < 2
    assert red_x < blue_x
    assert abs((red_x + blue_x) / 2 - 96) < 2  # centred
    assert blue_x - red_x == pytest.approx(60 * 192 / 120, abs=3)  # scaled to the crop


def test_a_crop_beyond_the_border_is_black_there_and_one_outside_is_all_black() -> None:
    image = np.full((100, 100), 200, np.uint8)  # gray input, as decoded
    crop = crop_square(image, Point(0, 50), 100, 0.0, 192)
    assert crop[:, :90].max() == 0
    assert crop[4:-4, 100:].min() == 200
    assert crop_square(image, Point(-500, -500), 50, 0.0, 192).max() == 0


def test_facemesh_sees_the_astronauts_face_and_not_the_cat() -> None:
    mesh = FaceMesh(DEFAULT_MODELS_DIR)
    x, y, w, h = ASTRONAUT_FACE
    face = crop_square(read_image(SAMPLES / "astronaut.png"), Point(x + w / 2, y + h / 2), 1.5 * max(w, h), 0, 192)
    cat = read_image(SAMPLES / "chelsea.png")
    not_face = crop_square(cat, Point(cat.shape[1] / 2, cat.shape[0] / 2), 150, 0, 192)
    assert mesh.presence(face) > 2
    assert mesh.presence(not_face) < -2
    mesh.close()


@pytest.mark.parametrize(
    ("kind", "network"), [(ModelKind.FACE_MESH, FaceMesh), (ModelKind.SELFIE_SEGMENTATION, PersonMask)]
)
def test_an_altered_file_of_the_verifiers_networks_is_refused(
    tmp_path: Path, kind: ModelKind, network: Callable[[Path], CropNetwork]
) -> None:
    model = MODEL_FILES[kind]
    altered = bytearray((DEFAULT_MODELS_DIR / model.filename).read_bytes())
    altered[5000] ^= 0xFF
    (tmp_path / model.filename).write_bytes(bytes(altered))
    with pytest.raises(ModelFileError, match="sha256"):
        network(tmp_path)


def test_the_verifier_model_is_pinned_and_an_altered_copy_is_refused(tmp_path: Path) -> None:
    model = load_verifier_model()
    for stages in (model.colour, model.monochrome):
        # A stage before any look, then one for each look (`LOOKS`), in order: FaceMesh, the person mask, the relook.
        first, mesh, person, relook = stages
        assert len(first.features) == len(first.weights) > 1
        assert not {"presence", "relook", "person", "around"} & set(first.features)
        assert "roll" in first.features
        assert "presence" in mesh.features
        assert not {"relook", "person", "around"} & set(mesh.features)
        assert {"presence", "person", "around"} <= set(person.features)
        assert "relook" not in person.features
        assert {"presence", "relook", "person", "around"} <= set(relook.features)
    assert list(model.doubt) == list(LOOKS)
    low, high = model.doubt["mesh"]
    assert low < 0.05  # FaceMesh is skipped only where the first stage is sure
    assert high > 0.95
    assert "skin" in model.colour[0].features
    assert not {"skin", "sat"} & set(model.monochrome[0].features)  # a monochrome photo has no colour to weigh
    assert model.stages(monochrome=True) is model.monochrome
    copy = tmp_path / VERIFIER_FILE.name
    shutil.copy(VERIFIER_FILE, copy)
    copy.write_text(copy.read_text().replace('"weights": [', '"weights": [0.5, '))
    with pytest.raises(ModelFileError, match="altered"):
        load_verifier_model(copy)
    with pytest.raises(ModelFileError, match="missing"):
        load_verifier_model(tmp_path / "nothing.json")


@pytest.mark.parametrize(
    ("stage", "feature", "refusal"),
    [
        (0, "presence", "stage 1 weighs"),
        (1, "person", "stage 2 weighs"),
        (2, "relook", "stage 3 weighs"),
        (None, "", "3 stages, not 4"),
    ],
)
def test_a_model_weighing_a_look_before_it_is_taken_or_missing_a_stage_is_refused(
    tmp_path: Path, stage: int | None, feature: str, refusal: str
) -> None:
    entry = json.loads(VERIFIER_FILE.read_text())
    stages = entry["colour"]["stages"]
    if stage is None:
        stages.pop()
    else:
        stages[stage]["features"][-1] = feature  # weighed before the look that measures it
    copy = tmp_path / VERIFIER_FILE.name
    copy.write_text(json.dumps(entry))
    with pytest.raises(ModelFileError, match=refusal):
        load_verifier_model(copy, hashlib.sha256(copy.read_bytes()).hexdigest())


def test_the_person_mask_covers_the_astronaut_and_not_a_spot_in_the_cats_fur() -> None:
    person = PersonMask(DEFAULT_MODELS_DIR)
    x, y, w, h = ASTRONAUT_FACE
    on_face, around_face = person.shares(read_image(SAMPLES / "astronaut.png"), Box(x, y, w, h))
    cat = read_image(SAMPLES / "chelsea.png")
    on_fur, around_fur = person.shares(cat, Box(205, 130, 40, 40))
    assert on_face > 0.8
    assert around_face > 0.3
    assert on_fur < 0.1
    assert around_fur < 0.1
    # A crop the subject fills reads as a person whatever it is: the fitted model weighs the mask with size and
    # FaceMesh, which tells the cat's face apart.
    assert person.shares(cat, Box(165, 90, 120, 120))[0] > 0.5
    person.close()


def test_the_person_mask_of_a_candidate_at_the_border_reads_the_padding_as_no_person() -> None:
    person = PersonMask(DEFAULT_MODELS_DIR)
    image = np.zeros((300, 300, 3), np.uint8)
    # Crops running past the top and left, then past the bottom and right: black there, and no person anywhere.
    assert person.shares(image, Box(0, 0, 10, 10)) == pytest.approx((0.0, 0.0), abs=0.05)
    assert person.shares(image, Box(295, 295, 5, 5)) == pytest.approx((0.0, 0.0), abs=0.05)
    person.close()


def test_the_person_crop_holds_head_and_shoulders_and_the_box_is_found_in_it() -> None:
    box = Box(100, 100, 40, 40)
    centre, span = person_crop(box)
    assert (centre, span) == (Point(120, 150), 160)  # 4 sides wide, centred 3/4 of a side below the face
    rows, columns = box_in_crop(box, centre, span, 256)
    assert (rows, columns) == (slice(48, 112), slice(96, 160))  # the middle of the upper half
    wide = Box(0, 0, 30, 10)  # the longer side sizes the crop
    assert person_crop(wide) == (Point(15, 27.5), 120)
    assert box_in_crop(wide, *person_crop(wide), 240) == (slice(65, 85), slice(90, 150))


def test_facemesh_is_a_look_taken_only_where_the_first_stage_is_in_doubt() -> None:
    """A sure face costs no network; a candidate in doubt gets FaceMesh first, then the later looks as needed."""
    verifier = Verifier(DEFAULT_MODELS_DIR, load_verifier_model())
    taken: list[str] = []
    look = verifier._looker.look

    def recording(name: str, pixels: np.ndarray, detection: Detection) -> dict[str, float]:
        taken.append(name)
        return look(name, pixels, detection)

    verifier._looker.look = recording  # type: ignore[method-assign]
    presence = verifier._looker._mesh.presence
    mesh_runs: list[float] = []

    def counted(rgb: np.ndarray) -> float:
        mesh_runs.append(presence(rgb))
        return mesh_runs[-1]

    verifier._looker._mesh.presence = counted  # type: ignore[method-assign]
    astronaut, cat = read_image(SAMPLES / "astronaut.png"), read_image(SAMPLES / "chelsea.png")
    x, y, w, h = ASTRONAUT_FACE
    assert verifier.probability(astronaut, Detection(Box(x, y, w, h), 0.99), monochrome=False) > 0.98
    assert (taken, len(mesh_runs)) == ([], 0)
    assert verifier.probability(astronaut, Detection(Box(x, y, w, h), 0.6), monochrome=False) > 0.9
    assert (taken, len(mesh_runs)) == (["mesh"], 1)
    assert mesh_runs[0] > 2  # FaceMesh sees a face
    taken.clear()
    assert verifier.probability(cat, Detection(Box(165, 90, 120, 120), 0.5), monochrome=False) < 0.2
    assert taken[0] == "mesh"
    verifier.close()


def test_a_model_without_a_doubt_band_for_each_look_is_refused(tmp_path: Path) -> None:
    entry = json.loads(VERIFIER_FILE.read_text())
    del entry["doubt"]["mesh"]
    copy = tmp_path / VERIFIER_FILE.name
    copy.write_text(json.dumps(entry))
    with pytest.raises(ModelFileError, match="doubt bands"):
        load_verifier_model(copy, hashlib.sha256(copy.read_bytes()).hexdigest())
