"""Detection strategies: which BlazeFace passes run over an image, and the named presets.

A strategy is a list of passes. A tiled pass resizes the image by `scale` and cuts
it into overlapping square tiles of the network's own input size, so a face `h`
pixels tall reaches the network `h * scale` pixels tall wherever it is in the
image, instead of being shrunk with the whole image into 128 or 192 pixels. A
whole-image pass runs once (MediaPipe fits the image into the input). Detections
of all passes are merged by non-maximum suppression (`consumer/merge.py`).

The presets were chosen with `ops/eval_recall.py` on the wider-val photos of
`../shared/data/faces/` (the figures are in the README): tuned on the even-numbered
images, checked on the odd-numbered ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.model_files import ModelKind


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    THOROUGH = "thorough"


@dataclass(frozen=True)
class Pass:
    """One model over the image: whole (`scale` None) or resized by `scale` and tiled.

    `max_face`: detections taller than this many network-input pixels are dropped,
    because at this scale they are mostly textures; a coarser pass answers for
    faces that large. None keeps every size.
    """

    model: ModelKind
    min_score: float
    scale: float | None = None
    max_face: int | None = None

    def describe(self) -> str:
        where = "whole" if self.scale is None else f"x{self.scale:g} tiles"
        limit = "" if self.max_face is None else f" faces<{self.max_face}px"
        return f"{self.model.value} {where} score>={self.min_score:g}{limit}"


@dataclass(frozen=True)
class Strategy:
    preset: Preset
    passes: tuple[Pass, ...]
    tile_overlap: float = 0.25  # share of a tile's side shared with its neighbour
    merge_iou: float = 0.3  # detections overlapping more than this are one face

    @property
    def models(self) -> list[ModelKind]:
        return sorted({p.model for p in self.passes})

    def min_score(self, model: ModelKind) -> float:
        return min(p.min_score for p in self.passes if p.model is model)

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self.passes)


PRESETS: dict[Preset, Strategy] = {
    # MediaPipe run the obvious way: one full-range pass over the whole image.
    Preset.FAST: Strategy(Preset.FAST, (Pass(ModelKind.FULL_RANGE, 0.5),)),
    # About a third of deface's CPU per image: faces from about 32 px tall.
    Preset.BALANCED: Strategy(
        Preset.BALANCED,
        (
            Pass(ModelKind.FULL_RANGE, 0.5),
            Pass(ModelKind.FULL_RANGE, 0.3, scale=0.375),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25),
        ),
    ),
    # Adds the short-range model on tiles at 3/4 size for faces from about 16 px; 3 times balanced's cost.
    Preset.THOROUGH: Strategy(
        Preset.THOROUGH,
        (
            Pass(ModelKind.FULL_RANGE, 0.5),
            Pass(ModelKind.FULL_RANGE, 0.3, scale=0.375),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.25),
            Pass(ModelKind.SHORT_RANGE, 0.5, scale=0.75, max_face=32),
        ),
    ),
}
