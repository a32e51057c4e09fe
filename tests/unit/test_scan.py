"""The scanning detector: presets run their passes and find faces the whole-image pass misses."""

from __future__ import annotations

import dataclasses
import tracemalloc

import cv2
import numpy as np
import pytest

from consumer.detection.model_files import DEFAULT_MODELS_DIR, ModelKind
from consumer.detection.network import FaceDetector
from consumer.detection.scan import ScanDetector, sweeping
from consumer.detection.strategy import PRESETS, Hints, Pass, Preset, SecondLook, Strategy, Sweep
from consumer.detection.tiling import Window, windows
from consumer.detection.verify import load_verifier_model
from consumer.imaging.types import Box, Detection
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, read_image

HEAD = (120, 20, 210, 210)  # x, y, w, h: the astronaut's head and some shoulder around ASTRONAUT_FACE
SCALE = 0.4  # the face becomes about 41 px tall in a 1280 x 960 picture
# Where the heads go; the second straddles tile borders of every pass.
SPOTS = [(60, 80), (350, 330), (900, 120), (700, 700), (1100, 780)]


def paste_heads(canvas: np.ndarray, spots: list[tuple[int, int]], scale: float) -> list[Box]:
    """Paste the astronaut's head, resized by `scale`, at each top-left spot of `canvas`; where its faces are."""
    head = read_image(SAMPLES / "astronaut.png")[HEAD[1] : HEAD[1] + HEAD[3], HEAD[0] : HEAD[0] + HEAD[2]]
    small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    fx, fy, fw, fh = ASTRONAUT_FACE
    faces = []
    for x, y in spots:
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        faces.append(
            Box(
                x + round((fx - HEAD[0]) * scale),
                y + round((fy - HEAD[1]) * scale),
                round(fw * scale),
                round(fh * scale),
            )
        )
    return faces


def small_faces_picture(scale: float = SCALE) -> tuple[np.ndarray, list[Box]]:
    """Five small astronaut heads on a textured background (BGR, as decoded), and where their faces are."""
    canvas = cv2.resize(read_image(SAMPLES / "coffee.png"), (1280, 960))
    return canvas, paste_heads(canvas, SPOTS, scale)


@pytest.fixture(scope="module")
def picture() -> tuple[np.ndarray, list[Box]]:
    return small_faces_picture()


# Lone heads, with no crowd around them to stir the coarse passes. thorough scans the whole picture at
# 1/2 size and finds the 41-px ones; balanced scans it only at 1/4 size, where a 41-px head is 10 px and
# scores 0.05 to 0.21 (measured; its hints start at 0.1), so it is held to finding them from 60 px up.
# Strays on the coffee background, textures larger than the second look checks (measured): thorough leans to
# recall and keeps 7, 68 to 140 px tall; balanced 3, of 85, 104 and 28 px (1 while its 1/2-size pass left hints
# only from 0.15: the full-size tiles the hints from 0.12 add find the 85-px one, at 0.44; the 28-px one, at
# 0.30, appeared when LiteRT replaced MediaPipe's Tasks graph, whose decoding differs only at edges).
@pytest.mark.parametrize(("preset", "scale", "most_strays"), [(Preset.BALANCED, 0.6, 3), (Preset.THOROUGH, SCALE, 8)])
def test_tiled_presets_find_every_lone_small_face_once(preset: Preset, scale: float, most_strays: int) -> None:
    pixels, faces = small_faces_picture(scale)
    with ScanDetector(PRESETS[preset], DEFAULT_MODELS_DIR) as detector:
        found = detector.detect(pixels)
    for face in faces:
        matches = [d for d in found if d.box.iou(face) > 0.4]
        assert len(matches) == 1, (face, found)
    assert len(found) <= len(faces) + most_strays, found


def test_the_whole_image_pass_alone_misses_them(picture: tuple[np.ndarray, list[Box]]) -> None:
    pixels, faces = picture
    with ScanDetector(PRESETS[Preset.FAST], DEFAULT_MODELS_DIR) as detector:
        found = detector.detect(pixels)
    assert sum(any(d.box.iou(face) > 0.4 for d in found) for face in faces) <= 1


def test_the_model_info_names_the_preset_its_passes_its_models_and_the_verifier() -> None:
    with ScanDetector(PRESETS[Preset.BALANCED], DEFAULT_MODELS_DIR) as detector:
        info = detector.info
    version = load_verifier_model().version
    assert info.preset == "balanced"
    assert info.name == f"blazeface-full-range-sparse+blazeface-short-range+facemesh+selfie-segmentation+{version}"
    assert info.version.endswith(f"+{version}")
    assert info.passes == PRESETS[Preset.BALANCED].describe()
    assert info.passes[-2].startswith("second look")
    assert info.passes[-1].startswith("verified")
    assert info.min_confidence == 0.3


@pytest.mark.parametrize("layout", ["bgr", "gray", "bgra", "bgr16"])
def test_decoded_pixels_of_every_layout_are_scanned(layout: str) -> None:
    bgr = read_image(SAMPLES / "astronaut.png")
    pixels = {
        "bgr": bgr,
        "gray": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "bgr16": bgr.astype(np.uint16) * 257,
    }[layout]
    with ScanDetector(PRESETS[Preset.BALANCED], DEFAULT_MODELS_DIR) as detector:
        found = detector.detect(pixels)
    assert any(d.box.iou(Box(*ASTRONAUT_FACE)) > 0.6 for d in found), found


def test_a_photo_larger_than_the_whole_pass_sees_gets_boxes_in_its_own_pixels() -> None:
    factor = 5  # 2560 px: the whole-image pass sees it shrunk to 192 px
    big = cv2.resize(read_image(SAMPLES / "astronaut.png"), None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    with ScanDetector(PRESETS[Preset.FAST], DEFAULT_MODELS_DIR) as detector:
        [face] = detector.detect(big)
    x, y, w, h = ASTRONAUT_FACE
    assert face.box.iou(Box(x * factor, y * factor, w * factor, h * factor)) > 0.6


def test_the_second_look_keeps_the_small_faces_and_drops_what_only_a_low_threshold_found(
    picture: tuple[np.ndarray, list[Box]],
) -> None:
    pixels, faces = picture
    eager = Strategy(Preset.THOROUGH, (Pass(ModelKind.SHORT_RANGE, 0.2, scale=1.0),))
    looked = dataclasses.replace(eager, second_look=SecondLook(below_score=1.0))
    with ScanDetector(eager, DEFAULT_MODELS_DIR) as detector:
        before = detector.detect(pixels)
    with ScanDetector(looked, DEFAULT_MODELS_DIR) as detector:
        after = detector.detect(pixels)
    strays_before = [d for d in before if all(d.box.iou(face) < 0.2 for face in faces)]
    strays_after = [d for d in after if all(d.box.iou(face) < 0.2 for face in faces)]
    for face in faces:
        assert any(d.box.iou(face) > 0.4 for d in after), (face, after)
    assert len(strays_after) < len(strays_before), (strays_before, strays_after)


def row_of_faces(scale: float = 0.25, step: float = 1.05) -> tuple[np.ndarray, list[Box]]:
    """Five astronaut heads side by side, faces about 26 px wide and `step` face widths apart, and their faces."""
    canvas = cv2.resize(read_image(SAMPLES / "coffee.png"), (640, 480))
    face_width = ASTRONAUT_FACE[2] * scale
    return canvas, paste_heads(canvas, [(100 + round(k * step * face_width), 200) for k in range(5)], scale)


def test_in_a_crowd_one_look_confirms_its_neighbours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every detection of a pass at 0.2 is looked at again. With the crop shared, the faces of the row still
    stand, and the look runs fewer times than with one look per detection (measured: 12 looks against 16)."""
    pixels, faces = row_of_faces()
    calls = 0
    detect = FaceDetector.detect

    def counted(self: FaceDetector, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        nonlocal calls
        calls += 1
        return detect(self, rgb, min_score)

    monkeypatch.setattr(FaceDetector, "detect", counted)  # the real detector, counted
    eager = Pass(ModelKind.SHORT_RANGE, 0.2, scale=1.0)
    runs = {}
    for reach in (0.25, 0.0):  # shared, and a crop for each detection alone
        with ScanDetector(
            Strategy(Preset.THOROUGH, (eager,), SecondLook(below_score=1.0, reach=reach, crowd_window=None)),
            DEFAULT_MODELS_DIR,
        ) as detector:
            calls = 0  # not the warm-up of loading
            found = detector.detect(pixels)
        for face in faces:
            assert any(d.box.iou(face) > 0.4 for d in found), (reach, face, found)
        runs[reach] = calls  # the pass's tiles, the same in both runs, and the looks
    assert runs[0.25] < runs[0.0], runs


def test_a_crowd_is_looked_at_on_wider_squares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three rows of five heads: every detection of a pass at 0.2 is looked at again. With the crowd window,
    the faces still stand, and the looks run on fewer, wider squares (measured: 3 of 256 px and 15 of 128 px,
    against 24 of 128 px when a look never widens)."""
    canvas = cv2.resize(read_image(SAMPLES / "coffee.png"), (640, 480))
    scale = 0.25
    step = round(1.05 * ASTRONAUT_FACE[2] * scale)
    spots = [(100 + k * step, 60 + row * round(HEAD[3] * scale)) for row in range(3) for k in range(5)]
    faces = paste_heads(canvas, spots, scale)
    sides: list[int] = []
    detect = FaceDetector.detect

    def counted(self: FaceDetector, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        sides.append(self.side)
        return detect(self, rgb, min_score)

    monkeypatch.setattr(FaceDetector, "detect", counted)  # the real detector, counted
    eager = Pass(ModelKind.SHORT_RANGE, 0.2, scale=1.0)
    looks = {}
    for window in (None, 256):
        strategy = Strategy(Preset.THOROUGH, (eager,), SecondLook(below_score=1.0, crowd_window=window))
        tiles = windows(canvas.shape[1], canvas.shape[0], eager.side, strategy.tile_overlap)
        with ScanDetector(strategy, DEFAULT_MODELS_DIR) as detector:
            sides.clear()  # not the warm-up of loading
            found = detector.detect(canvas)
            looks[window] = sides[len(tiles) :]  # after the pass's tiles
        for face in faces:
            assert any(d.box.iou(face) > 0.4 for d in found), (window, face, found)
    assert set(looks[None]) == {128}
    assert 256 in looks[256]
    assert len(looks[256]) < len(looks[None]), looks


def test_a_guided_pass_runs_only_where_the_pass_before_it_left_hints(picture: tuple[np.ndarray, list[Box]]) -> None:
    """A pass at 3/8 size that keeps only sure faces (score 0.9) and leaves hints of weak small faces: the guided
    pass after it finds every small face. Without hints (none are that small) it adds nothing, and neither
    does a second guided pass after a guided pass that left no hints: hints come from the pass just before."""
    pixels, faces = picture
    guided = Pass(ModelKind.SHORT_RANGE, 0.35, scale=1.0, guided=True)

    def coarse(hints: Hints) -> Pass:
        return Pass(ModelKind.SHORT_RANGE, 0.9, scale=0.375, hints=hints)

    hinted = Strategy(Preset.BALANCED, (coarse(Hints(0.2, 24)), guided))
    blind = Strategy(Preset.BALANCED, (coarse(Hints(0.2, 0)), guided))
    relayed = Strategy(
        Preset.BALANCED,
        (coarse(Hints(0.2, 24)), dataclasses.replace(guided, max_face=0, hints=Hints(0.2, 0)), guided),
    )
    alone = Strategy(Preset.BALANCED, (coarse(Hints(0.2, 24)),))
    with ScanDetector(alone, DEFAULT_MODELS_DIR) as detector:
        coarse_only = detector.detect(pixels)
    assert sum(any(d.box.iou(face) > 0.4 for d in coarse_only) for face in faces) <= 1
    with ScanDetector(hinted, DEFAULT_MODELS_DIR) as detector:
        found = detector.detect(pixels)
    for face in faces:
        assert any(d.box.iou(face) > 0.4 for d in found), (face, found)
    for strategy in (blind, relayed):
        with ScanDetector(strategy, DEFAULT_MODELS_DIR) as detector:
            assert detector.detect(pixels) == coarse_only


def test_a_sweep_lays_tiles_side_by_side_where_no_hinted_tile_holds_their_centre() -> None:
    everywhere = sweeping((512, 384), 128, [])
    assert [(w.x, w.y) for w in everywhere] == [(x, y) for y in (0, 128, 256) for x in (0, 128, 256, 384)]
    hinted = [Window(96, 96, 128)]  # holds the centres (160, 160) and (192, 192) of none but one sweep tile
    assert [(w.x, w.y) for w in sweeping((512, 384), 128, hinted)] == [
        (x, y) for y in (0, 128, 256) for x in (0, 128, 256, 384) if (x, y) != (128, 128)
    ]
    assert [(w.x, w.y) for w in sweeping((300, 100), 128, [])] == [(0, 0), (128, 0), (172, 0)]  # the last at the edge


def test_a_sweeping_guided_pass_finds_faces_no_hint_pointed_at(picture: tuple[np.ndarray, list[Box]]) -> None:
    """The coarse pass leaves no hint (none is that small), so the guided pass alone runs nowhere; sweeping the
    rest of the picture side by side, it finds every small face."""
    pixels, faces = picture
    coarse = Pass(ModelKind.SHORT_RANGE, 0.9, scale=0.375, hints=Hints(0.2, 0))
    guided = Pass(ModelKind.SHORT_RANGE, 0.35, scale=1.0, guided=True)
    for sweep, finds in ((None, 0), (Sweep(crowd=1), len(faces))):
        strategy = Strategy(Preset.BALANCED, (coarse, dataclasses.replace(guided, sweep=sweep)))
        with ScanDetector(strategy, DEFAULT_MODELS_DIR) as detector:
            found = detector.detect(pixels)
        assert sum(any(d.box.iou(face) > 0.4 for d in found) for face in faces) == finds, (sweep, found)


def test_a_swept_tile_points_the_next_pass_at_a_crowd_not_at_a_lone_weak_face() -> None:
    """26-px heads, alone and in a block of twelve, that the coarse pass does not see: a sweep at 1/2 size that
    keeps nothing itself points the full-size pass at the block's tiles (two and more hints each), and at the
    lone heads only when one hint is a crowd."""
    canvas = cv2.resize(read_image(SAMPLES / "coffee.png"), (1280, 960))
    lone = paste_heads(canvas, SPOTS, 0.25)
    block = paste_heads(canvas, [(560 + i * 52, 420 + j * 52) for i in range(4) for j in range(3)], 0.25)

    def found_of(crowd: int) -> tuple[int, int]:
        strategy = Strategy(
            Preset.BALANCED,
            (
                Pass(ModelKind.SHORT_RANGE, 0.9, scale=0.25, hints=Hints(0.2, 0)),
                Pass(
                    ModelKind.SHORT_RANGE,
                    0.5,
                    scale=0.5,
                    max_face=0,
                    hints=Hints(0.12, 24),
                    guided=True,
                    sweep=Sweep(crowd),
                ),
                Pass(ModelKind.SHORT_RANGE, 0.35, scale=1.0, guided=True),
            ),
        )
        with ScanDetector(strategy, DEFAULT_MODELS_DIR) as detector:
            found = detector.detect(canvas)

        def masked(faces: list[Box]) -> int:
            return sum(any(d.box.iou(f) > 0.4 for d in found) for f in faces)

        return masked(lone), masked(block)

    assert found_of(1) == (5, 12)
    assert found_of(2) == (0, 12)


def test_only_a_guided_pass_sweeps() -> None:
    with pytest.raises(ValueError, match="only a guided pass"):
        Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.5, sweep=Sweep())


@pytest.mark.parametrize("sweep", [None, Sweep()])
def test_a_guided_pass_cuts_its_tiles_from_the_photo_instead_of_resizing_all_of_it(
    picture: tuple[np.ndarray, list[Box]], sweep: Sweep | None
) -> None:
    """The small-faces picture at three times its size (11 megapixels): the guided pass at 1/3 size finds the
    five faces, holding a few tiles at a time instead of the 3.7 MB photo resized to 1/3, even when it also
    sweeps the rest of the photo."""
    small, faces = picture
    pixels = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    resized_copy = small.nbytes
    strategy = Strategy(
        Preset.BALANCED,
        (
            Pass(ModelKind.SHORT_RANGE, 1.0, scale=0.125, hints=Hints(0.2, 24)),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=1 / 3, guided=True, sweep=sweep),
        ),
    )
    with ScanDetector(strategy, DEFAULT_MODELS_DIR) as detector:
        detector.detect(small)  # first calls' one-time allocations (lazy imports, caches) are not the tiles'
        tracemalloc.start()
        try:
            found = detector.detect(pixels)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    for face in faces:
        big = Box(face.x * 3, face.y * 3, face.w * 3, face.h * 3)
        assert any(d.box.iou(big) > 0.4 for d in found), (big, found)
    assert peak < resized_copy / 2, (peak, resized_copy)


def test_a_mirrored_pass_finds_each_face_again_in_the_flipped_tile_and_maps_it_back(
    picture: tuple[np.ndarray, list[Box]],
) -> None:
    """Merging switched off (IoU 1.0), each face's detections in the flipped tiles land on the face itself."""
    pixels, faces = picture
    plain = Pass(ModelKind.SHORT_RANGE, 0.5, scale=1.0)
    counts = {}
    for scan_pass in (plain, dataclasses.replace(plain, mirrored=True)):
        with ScanDetector(Strategy(Preset.THOROUGH, (scan_pass,), merge_iou=1.0), DEFAULT_MODELS_DIR) as detector:
            found = detector.detect(pixels)
        counts[scan_pass.mirrored] = [sum(d.box.iou(face) > 0.5 for d in found) for face in faces]
    assert all(plain_count > 0 for plain_count in counts[False]), counts
    assert all(m > p for m, p in zip(counts[True], counts[False], strict=True)), counts
