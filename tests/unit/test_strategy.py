"""Strategy rules: which detections a pass keeps or passes on as hints, which need a second look."""

from __future__ import annotations

import pytest

from consumer.detection.model_files import ModelKind
from consumer.detection.strategy import Hints, Pass, Preset, SecondLook, Strategy
from consumer.imaging.types import Box, Point


def test_a_pass_keeps_by_score_and_size_and_hints_at_weaker_small_faces() -> None:
    tiled = Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.375, max_face=64, hints=Hints(0.2, 24))
    assert tiled.keep(0.5, 64)
    assert not tiled.keep(0.49, 30)
    assert not tiled.keep(0.9, 65)
    assert tiled.hint(0.2, 24)  # below the kept score: a hint only
    assert tiled.hint(0.9, 10)  # kept and a hint
    assert not tiled.hint(0.19, 10)
    assert not tiled.hint(0.9, 25)
    assert not Pass(ModelKind.FULL_RANGE, 0.5).hint(0.9, 10)
    assert tiled.lowest_score == 0.2


def test_only_weak_small_detections_need_a_second_look() -> None:
    look = SecondLook(below_score=0.75, max_height=64)
    assert look.needed(0.74, 63)
    assert not look.needed(0.75, 20)
    assert not look.needed(0.4, 64)


def test_the_passes_load_each_model_at_the_lowest_score_they_need_and_the_look_at_its_own() -> None:
    passes = (
        Pass(ModelKind.FULL_RANGE, 0.5),
        Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.375, hints=Hints(0.25, 24)),
        Pass(ModelKind.SHORT_RANGE, 0.35, scale=1.0, guided=True),
    )
    strategy = Strategy(Preset.BALANCED, passes, SecondLook(min_score=0.3, crowd_window=None))
    assert [strategy.detector_of(p) for p in passes] == [
        (ModelKind.FULL_RANGE, 0.5, 192),
        (ModelKind.SHORT_RANGE, 0.25, 128),
        (ModelKind.SHORT_RANGE, 0.25, 128),
    ]
    assert strategy.models == [ModelKind.FULL_RANGE, ModelKind.SHORT_RANGE]
    assert strategy.detectors == [
        (ModelKind.FULL_RANGE, 0.5, 192),
        (ModelKind.SHORT_RANGE, 0.25, 128),
        (ModelKind.SHORT_RANGE, 0.3, 128),
    ]
    assert strategy.describe()[-1].startswith("second look")
    assert len(strategy.describe()) == 4
    same = Strategy(Preset.BALANCED, passes, SecondLook(min_score=0.25, crowd_window=None))
    assert same.detectors == [(ModelKind.FULL_RANGE, 0.5, 192), (ModelKind.SHORT_RANGE, 0.25, 128)]  # one serves both


def test_a_pass_on_larger_windows_has_a_detector_of_its_own_at_its_models_lowest_score() -> None:
    passes = (
        Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25, hints=Hints(0.1, 24)),
        Pass(ModelKind.SHORT_RANGE, 0.3, scale=1.0, guided=True, window=160),
    )
    strategy = Strategy(Preset.BALANCED, passes)
    assert [strategy.detector_of(p) for p in passes] == [
        (ModelKind.SHORT_RANGE, 0.1, 128),
        (ModelKind.SHORT_RANGE, 0.1, 160),
    ]
    assert passes[1].side == 160
    assert "x1 tiles of 160px at hints" in passes[1].describe()


@pytest.mark.parametrize(
    ("model", "scale", "window", "reason"),
    [
        (ModelKind.FULL_RANGE, 1.0, 384, "full_range network runs on 192-px squares only"),
        (ModelKind.SHORT_RANGE, 1.0, 150, "or larger multiples of 16 px, not 150"),
        (ModelKind.SHORT_RANGE, 1.0, 96, "not 96"),
        (ModelKind.SHORT_RANGE, None, 160, "whole-image pass"),
    ],
)
def test_windows_the_network_cannot_take_are_refused(
    model: ModelKind, scale: float | None, window: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Pass(model, 0.5, scale=scale, window=window)


def test_a_look_finds_a_detection_when_a_face_is_centred_on_it() -> None:
    look = SecondLook(centre_tolerance=0.3)
    box = Box(100, 100, 20, 20)  # centre (110, 110); tolerance 6 px
    assert look.finds(box, [Point(300, 300), Point(115.9, 104.1)])
    assert not look.finds(box, [Point(116, 110)])
    assert not look.finds(box, [])


def test_a_look_shares_its_crop_with_near_neighbours_of_a_similar_size() -> None:
    look = SecondLook(zoom=4.0, reach=0.25, similar=1.5)
    looked = Box(100, 100, 20, 20)  # crop 80 px; neighbours' centres within 20 px of (110, 110)
    assert look.span(looked) == 80
    assert look.shares(looked, Box(120, 90, 20, 20))
    assert not look.shares(looked, Box(121, 100, 20, 20))
    assert look.shares(looked, Box(110, 110, 30, 30))  # centre (125, 125), 1.5 times as large
    assert not look.shares(looked, Box(110, 110, 31, 31))
    assert not look.shares(looked, Box(113, 113, 13, 13))  # under 1/1.5 the size


def test_a_look_widens_in_a_crowd_and_shares_the_wider_crop_as_far_from_its_edge() -> None:
    look = SecondLook(zoom=4.0, reach=0.25, similar=1.5, crowd_window=256, crowd=2)
    looked = Box(100, 100, 20, 20)  # narrow crop 80 px; wide crop 160 px, neighbours' centres within 60 px
    assert look.span(looked, wide=True) == 160
    assert look.shares(looked, Box(160, 40, 20, 20), wide=True)
    assert not look.shares(looked, Box(161, 100, 20, 20), wide=True)
    assert not look.shares(looked, Box(150, 100, 31, 31), wide=True)  # too large, wherever it is
    assert not look.widens(looked, [Box(160, 40, 20, 20), Box(161, 100, 20, 20)])
    assert look.widens(looked, [Box(160, 40, 20, 20), Box(40, 160, 20, 20)])
    assert look.detectors == {(ModelKind.SHORT_RANGE, 0.3, 128), (ModelKind.SHORT_RANGE, 0.3, 256)}
    never = SecondLook(crowd_window=None, crowd=0)
    assert not never.widens(looked, [looked])
    assert never.detectors == {(ModelKind.SHORT_RANGE, 0.3, 128)}
    with pytest.raises(ValueError, match="not 250 px"):
        SecondLook(crowd_window=250)


def test_a_guided_pass_must_follow_a_pass_that_leaves_hints() -> None:
    hinting = Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25, hints=Hints(0.15, 32))
    guided = Pass(ModelKind.SHORT_RANGE, 0.3, scale=1.0, guided=True)
    Strategy(Preset.BALANCED, (hinting, guided))
    with pytest.raises(ValueError, match="does not follow a pass that leaves hints"):
        Strategy(Preset.BALANCED, (guided,))
    with pytest.raises(ValueError, match="does not follow a pass that leaves hints"):
        Strategy(Preset.BALANCED, (hinting, Pass(ModelKind.FULL_RANGE, 0.5), guided))
