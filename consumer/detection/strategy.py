"""Detection strategies: which BlazeFace passes run over an image, and the named presets.

A strategy is a list of passes. A tiled pass resizes the image by `scale` and cuts
it into overlapping square tiles of the network's own input size, so a face `h`
pixels tall reaches the network `h * scale` pixels tall wherever it is in the
image, instead of being shrunk with the whole image into 128 or 192 pixels. A
whole-image pass runs once (the detector fits the image into the input).

Small faces need the image at full size, where it is about a hundred short-range
tiles, but only a few of them hold a face. So a pass can leave hints: its weak
detections of small faces (below the score it keeps, down to `Hints.min_score`).
A guided pass runs only on the tiles that hold the centre of a hint left by the
pass just before it, and can leave hints itself: a crowd glimpsed at 1/4 size
shows where to look at 1/2 size, and the weak small faces found there show where
to look at full size. The whole image is then scanned on overlapping tiles at 1/4 size
only; a guided pass may also sweep the rest at its own size on tiles side by side
(`Sweep`), for a crowd of faces too small to stir the coarser pass.

Detections of all passes are merged by non-maximum suppression
(`consumer/detection/merge.py`); then each low-score small one gets a `SecondLook`: the
short-range model on a crop around it, where a true face is found again and most
false ones (textures, patterns) are not.

The presets were chosen with `ops/eval_recall.py` on the wider-val photos of
`../shared/data/faces/` (the figures are in docs/detection.md): tuned on the even-numbered
images, checked on the odd-numbered ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.detection.blazeface import check_input_side
from consumer.detection.model_files import MODEL_FILES, ModelKind
from consumer.imaging.types import Box, Point

# The detector a pass or a look runs: model, the score it is loaded at, the side of the squares it runs on.
DetectorKey = tuple[ModelKind, float, int]


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    THOROUGH = "thorough"

    def at_least(self, other: Preset) -> bool:
        """Whether this preset looks for faces at least as hard as `other` (fast < balanced < thorough)."""
        order = list(Preset)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class Hints:
    """A pass's detections scoring at least `min_score` and at most `max_face` network-input pixels tall
    point the guided pass after it at the tiles to run."""

    min_score: float
    max_face: int

    def take(self, score: float, height: int) -> bool:
        """Whether a detection (score, height in network-input pixels) is a hint."""
        return score >= self.min_score and height <= self.max_face


@dataclass(frozen=True)
class Sweep:
    """A guided pass's tiles side by side (not overlapping) over the rest of the image: those whose centre no
    hinted tile holds. A crowd of faces too small to stir the pass before it (a wall of 20-px faces is 5 px at
    1/4 size) would otherwise leave no hint anywhere, and be missed whole. A swept tile passes its hints on
    only when it holds at least `crowd` of them, a crowd: following every swept hint found the same walls of
    faces for more candidates and time (docs/detection.md, "Walls of small faces"), and the coarser passes
    answer for a lone face as before."""

    crowd: int = 2


@dataclass(frozen=True)
class Pass:
    """One model over the image: whole (`scale` None) or resized by `scale` and tiled.

    `max_face`: detections taller than this many network-input pixels are dropped,
    because at this scale they are mostly textures; a coarser pass answers for
    faces that large. None keeps every size.
    `hints`: this pass's weak detections of small faces, for the guided pass after it.
    `guided`: run only on the tiles holding the centre of a hint of the pass just before.
    `mirrored`: also run the model on each tile flipped left to right. BlazeFace is not symmetric: a
    mirrored tile scores a turned-away or half-hidden face differently, often above the threshold.
    `window`: the side of the tiles, in pixels of the resized image, when larger than the network's own
    input: the short-range network runs on the whole window at once (it is fully convolutional), which
    sees a face near a 128-px tile's edge with the context around it. None: the network's input.
    `sweep`: a guided pass also runs on tiles side by side over the rest of the image (`Sweep`).
    """

    model: ModelKind
    min_score: float
    scale: float | None = None
    max_face: int | None = None
    hints: Hints | None = None
    guided: bool = False
    mirrored: bool = False
    window: int | None = None
    sweep: Sweep | None = None

    def __post_init__(self) -> None:
        if self.sweep is not None and not self.guided:
            raise ValueError("only a guided pass sweeps the rest of the image")
        if self.window is not None:
            if self.scale is None:
                raise ValueError("a whole-image pass has no tiles to size")
            check_input_side(self.model, self.window)

    @property
    def side(self) -> int:
        """The side of the square tiles this pass runs the network on, in pixels of the resized image."""
        return self.window or MODEL_FILES[self.model].input_side

    def keep(self, score: float, height: int) -> bool:
        """Whether a detection (score, height in network-input pixels) is kept as a face."""
        return score >= self.min_score and (self.max_face is None or height <= self.max_face)

    def hint(self, score: float, height: int) -> bool:
        """Whether a detection (score, height in network-input pixels) is a hint for the guided pass after it."""
        return self.hints is not None and self.hints.take(score, height)

    @property
    def lowest_score(self) -> float:
        """The lowest score this pass needs from its model."""
        return min(self.min_score, self.hints.min_score) if self.hints else self.min_score

    def describe(self) -> str:
        where = "whole" if self.scale is None else f"x{self.scale:g} tiles"
        if self.window is not None:
            where += f" of {self.window}px"
        if self.guided:
            where += " at hints"
            if self.sweep is not None:
                where += f", side by side elsewhere (crowds from {self.sweep.crowd})"
        if self.mirrored:
            where += " and mirrored"
        limit = "" if self.max_face is None else f" faces<{self.max_face}px"
        hints = "" if self.hints is None else f" hints>={self.hints.min_score:g} faces<={self.hints.max_face}px"
        return f"{self.model.value} {where} score>={self.min_score:g}{limit}{hints}"


@dataclass(frozen=True)
class SecondLook:
    """A check of each merged detection scoring under `below_score` and under `max_height` source pixels tall.

    The short-range model runs on a square crop of the image centred on the
    detection, `zoom` times its longer side (padded black beyond the border),
    resized to the network's input. The detection is kept when a face scoring at
    least `min_score` is found there with its centre within `centre_tolerance`
    of the detection's side from the detection's centre. Taller detections are
    never dropped: a large face is the most recognisable one.

    In a crowd, one crop holds several detections waiting for their look. A face
    found centred on a neighbour that `shares` the crop confirms the neighbour
    too, which then needs no look of its own; a neighbour not found there still
    gets its own look, centred on it, before it can be dropped. When at least
    `crowd` waiting neighbours would share a wider crop, the look runs on a
    `crowd_window`-px square instead, at the same zoom: the network (fully
    convolutional) sees more of the crowd around the detection at once, and each
    neighbour as far from the crop's edge as a narrow crop's shared ones are.
    """

    below_score: float = 0.75
    max_height: int = 64
    zoom: float = 4.5
    min_score: float = 0.3
    centre_tolerance: float = 0.3
    reach: float = 0.25  # a neighbour shares a crop when its centre is this share of the crop's side from the middle
    similar: float = 1.5  # ... and its longer side within this factor of the looked-at detection's
    model: ModelKind = ModelKind.SHORT_RANGE
    crowd_window: int | None = 256  # the side of a look's square in a crowd; None: always the network's input
    crowd: int = 4  # waiting neighbours the wider crop would share that make a crowd

    def __post_init__(self) -> None:
        if self.crowd_window is not None:
            check_input_side(self.model, self.crowd_window)

    def needed(self, score: float, height: int) -> bool:
        """Whether a merged detection (score, height in source pixels) has to be found again to stay."""
        return score < self.below_score and height < self.max_height

    def widens(self, looked: Box, waiting: list[Box]) -> bool:
        """Whether the look at `looked` runs on the crowd window: enough of the detections `waiting` for a
        look would share it."""
        return self.crowd_window is not None and sum(self.shares(looked, b, wide=True) for b in waiting) >= self.crowd

    def side(self, wide: bool) -> int:
        """The side of the square the network runs on for a look (`wide`: in a crowd), in its pixels."""
        return self.crowd_window if wide and self.crowd_window is not None else MODEL_FILES[self.model].input_side

    def detector(self, wide: bool) -> DetectorKey:
        """The detector a look runs (`wide`: in a crowd): its own, loaded at the look's score."""
        return self.model, self.min_score, self.side(wide)

    @property
    def detectors(self) -> set[DetectorKey]:
        """Every detector the looks run."""
        return {self.detector(wide) for wide in (False, True)}

    def span(self, box: Box, wide: bool = False) -> int:
        """The side, in source pixels, of the square crop looked at for `box` (`wide`: in a crowd)."""
        span = max(8, round(self.zoom * max(box.w, box.h)))
        return span * self.side(wide) // self.side(wide=False)

    def finds(self, box: Box, seen: list[Point]) -> bool:
        """Whether one of the centres `seen` by a look (source pixels) is the centre of `box`."""
        tolerance = self.centre_tolerance * max(box.w, box.h)
        centre = box.centre
        return any(abs(p.x - centre.x) < tolerance and abs(p.y - centre.y) < tolerance for p in seen)

    def shares(self, looked: Box, neighbour: Box, wide: bool = False) -> bool:
        """Whether the crop of `looked` (`wide`: in a crowd) can confirm `neighbour`: of a similar size, and
        as far from the crop's edge as one `reach` from the middle of a narrow crop is."""
        reach = self.span(looked, wide) / 2 - (0.5 - self.reach) * self.span(looked)
        near = abs(neighbour.centre.x - looked.centre.x) <= reach and abs(neighbour.centre.y - looked.centre.y) <= reach
        ratio = max(neighbour.w, neighbour.h) / max(looked.w, looked.h, 1)
        return near and 1 / self.similar <= ratio <= self.similar

    def describe(self) -> str:
        return (
            f"second look at score<{self.below_score:g} under {self.max_height}px:"
            f" {self.model.value} on x{self.zoom:g} crop score>={self.min_score:g}"
            f", shared by neighbours within {self.reach:g} of it sized within x{self.similar:g}"
            + ("" if self.crowd_window is None else f", on {self.crowd_window}px from {self.crowd} neighbours")
        )


@dataclass(frozen=True)
class Verify:
    """Each merged candidate stays a face when the verifier (`consumer/detection/verify.py`: FaceMesh and the
    selfie segmentation on crops around it, and a fitted model over those and the detector's score) gives it at
    least `min_probability`; one at least `large` px tall already from `large_min_probability`. When in doubt,
    mask the faces that are easiest to recognise: a large face the verifier doubts is most often an occluded or
    turned one."""

    min_probability: float
    large: int = 128
    large_min_probability: float = 0.1

    def keeps(self, probability: float, height: int, min_probability: float) -> bool:
        """Whether a candidate `height` px tall with this `probability` is masked, `min_probability` being the
        threshold in force (the strategy's, or a request's lower one)."""
        if height >= self.large:
            min_probability = min(min_probability, self.large_min_probability)
        return probability >= min_probability

    def describe(self) -> str:
        return (
            f"verified: facemesh presence, person mask and detector score, fitted model, p>={self.min_probability:g}"
            f" (from {self.large}px p>={self.large_min_probability:g})"
        )


@dataclass(frozen=True)
class Strategy:
    preset: Preset
    passes: tuple[Pass, ...]
    second_look: SecondLook | None = None
    verify: Verify | None = None
    tile_overlap: float = 0.25  # share of a tile's side shared with its neighbour
    merge_iou: float = 0.3  # detections overlapping more than this are one face

    def __post_init__(self) -> None:
        for before, scan_pass in zip((None, *self.passes), self.passes, strict=False):
            if scan_pass.guided and (before is None or before.hints is None):
                raise ValueError(f"guided pass '{scan_pass.describe()}' does not follow a pass that leaves hints")

    @property
    def models(self) -> list[ModelKind]:
        used = {p.model for p in self.passes}
        if self.second_look is not None:
            used.add(self.second_look.model)
        ordered = sorted(used)
        verifier = [ModelKind.FACE_MESH, ModelKind.SELFIE_SEGMENTATION] if self.verify is not None else []
        return [*ordered, *verifier]  # the detectors first

    def detector_of(self, scan_pass: Pass) -> DetectorKey:
        """The detector `scan_pass` runs: one per model and tile side, loaded at the lowest score any pass of
        that model needs. The detector merges its candidates by score-weighted means, so its score shapes
        the boxes too, and loading a pass's detector at the pass's own, higher score masked fewer faces."""
        sharing = [p for p in self.passes if p.model is scan_pass.model]
        return scan_pass.model, min(p.lowest_score for p in sharing), scan_pass.side

    @property
    def detectors(self) -> list[DetectorKey]:
        """Each detector the strategy runs: one per model and tile side for the passes, and the second
        look's at its own score (on the network's input and on the crowd window). A detector returns every
        candidate above its threshold, and a textured crop holds several times as many above the passes'
        lower threshold, so the look does not share their detector. Detectors differing only in their score run on one
        network (`consumer/detection/scan.py`)."""
        used = {self.detector_of(p) for p in self.passes}
        if self.second_look is not None:
            used.update(self.second_look.detectors)
        return sorted(used)

    def describe(self) -> list[str]:
        """The passes, then the second look and the verification, one line each (as metadata events record them)."""
        lines = [p.describe() for p in self.passes]
        lines += [self.second_look.describe()] if self.second_look else []
        return lines + ([self.verify.describe()] if self.verify else [])


PRESETS: dict[Preset, Strategy] = {
    # MediaPipe run the obvious way: one full-range pass over the whole image.
    Preset.FAST: Strategy(Preset.FAST, (Pass(ModelKind.FULL_RANGE, 0.5),)),
    # Short range at 1/4 size over the whole image; at 1/2 size where the 1/4 pass glimpsed small faces,
    # and side by side over the rest for crowds too small for that; at full size (on 160-px windows) where
    # the 1/2 pass saw small faces; each weak small detection checked by a second look, then verified.
    Preset.BALANCED: Strategy(
        Preset.BALANCED,
        (
            Pass(ModelKind.FULL_RANGE, 0.5),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25, hints=Hints(0.1, 24)),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.5, max_face=64, hints=Hints(0.12, 24), guided=True, sweep=Sweep()),
            Pass(ModelKind.SHORT_RANGE, 0.3, scale=1.0, guided=True, window=160),
        ),
        SecondLook(),
        Verify(0.2),
    ),
    # About three times balanced's cost: full range on tiles at 3/8 size, short range at 1/2 size, and at
    # full size on 192-px windows, also mirrored, wherever the 1/2 pass saw small faces.
    Preset.THOROUGH: Strategy(
        Preset.THOROUGH,
        (
            Pass(ModelKind.FULL_RANGE, 0.5),
            Pass(ModelKind.FULL_RANGE, 0.3, scale=0.375),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.5, max_face=64, hints=Hints(0.15, 32)),
            Pass(ModelKind.SHORT_RANGE, 0.3, scale=1.0, guided=True, mirrored=True, window=192),
        ),
        SecondLook(),
        Verify(0.3),
    ),
}
