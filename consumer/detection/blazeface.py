"""BlazeFace's raw outputs turned into faces, the way MediaPipe's face detector graph does it.

BlazeFace is a single-shot detector: for each anchor of a fixed grid over its square
input it gives one score logit and 16 regression values (the box centre's offset
from the anchor, the box's width and height, then six keypoints), all in input
pixels. MediaPipe's FaceDetectorGraph decodes them with SsdAnchorsCalculator,
TensorsToDetectionsCalculator and NonMaxSuppressionCalculator; the options it sets
are the constants here. `tests/unit/test_blazeface.py` holds this module to
MediaPipe's own Tasks FaceDetector on real tiles: the same faces, the same scores,
the same boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from consumer.detection.model_files import MODEL_FILES, ModelKind

FloatArray = npt.NDArray[np.floating[Any]]

# (stride, anchors per grid cell) of each feature map, finest first. MediaPipe's anchor options:
# short range, 4 layers with strides 8, 16, 16, 16 and an interpolated anchor per layer, which
# gives 2 anchors per cell at stride 8 and 6 (three layers merged) at stride 16: 896 in all;
# full range, one layer with stride 4 and no interpolated anchor: 2304.
ANCHOR_GRIDS: dict[ModelKind, tuple[tuple[int, int], ...]] = {
    ModelKind.SHORT_RANGE: ((8, 2), (16, 6)),
    ModelKind.FULL_RANGE: ((4, 1),),
}
# The networks are fully convolutional up to their output rows, so short range also runs on larger
# squares (a multiple of its coarsest stride, so that its grid stays whole); the full-range model's
# sparse layers cannot be resized by LiteRT (XNNPACK fails to prepare them).
RESIZABLE = frozenset({ModelKind.SHORT_RANGE})
SUPPRESSION_IOU = 0.3  # MediaPipe's FaceDetectorOptions.min_suppression_threshold default
SCORE_CLIP = 100.0  # logits are clipped to +-100 before the sigmoid


@dataclass(frozen=True)
class Candidate:
    """A face the network found, in input pixels (corners as floats), with its score and its eyes (the
    subject's right eye, then the left: x, y, x, y)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    eyes: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def anchor_centres(kind: ModelKind, side: int) -> FloatArray:
    """The centre of every anchor of `kind`'s network for a `side` x `side` input, in input pixels,
    in the order of the network's outputs (row by row, then the anchors of a cell)."""
    parts = []
    for stride, per_cell in ANCHOR_GRIDS[kind]:
        cells = math.ceil(side / stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) * (side / cells)
        parts.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(parts).astype(np.float32)


def check_input_side(kind: ModelKind, side: int) -> None:
    """Raise ValueError unless `kind`'s network can run on `side`-px squares."""
    native = MODEL_FILES[kind].input_side
    if side == native:
        return
    coarsest = max(stride for stride, _ in ANCHOR_GRIDS[kind])
    if kind not in RESIZABLE or side < native or side % coarsest:
        raise ValueError(
            f"the {kind.value} network runs on {native}-px squares"
            + (f" or larger multiples of {coarsest} px" if kind in RESIZABLE else " only")
            + f", not {side} px"
        )


def score_logit(min_score: float) -> float:
    """The logit a score must reach to be at least `min_score` after the sigmoid."""
    if min_score <= 0:
        return -math.inf
    if min_score >= 1:
        return math.inf
    return math.log(min_score / (1 - min_score))


def decode(regressors: FloatArray, logits: FloatArray, centres: FloatArray, min_logit: float) -> list[Candidate]:
    """The faces in one output of the network (`regressors` (n, 16), `logits` (n,)) scoring at least
    `min_logit`, merged by MediaPipe's weighted non-maximum suppression, best score first."""
    keep = np.flatnonzero(logits >= min_logit)
    if keep.size == 0:
        return []
    raw = regressors[keep]
    cx = raw[:, 0] + centres[keep, 0]
    cy = raw[:, 1] + centres[keep, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    eyes = raw[:, 4:8] + np.tile(centres[keep], 2)  # keypoints 0 and 1, offsets from the anchor like the centre
    boxes = np.concatenate([np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1), eyes], axis=1)
    scores = 1 / (1 + np.exp(-np.clip(logits[keep], -SCORE_CLIP, SCORE_CLIP)))
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return weighted_suppression(boxes[valid], scores[valid])


def weighted_suppression(boxes: FloatArray, scores: FloatArray) -> list[Candidate]:
    """MediaPipe's WEIGHTED non-maximum suppression: the best remaining box takes every remaining box
    overlapping it by more than `SUPPRESSION_IOU` (itself included) and becomes their score-weighted
    mean, keypoints too, keeping its own score. Best score first. `boxes`: corners, then the eyes if known.

    The overlaps of every pair are worked out at once: a tile's candidates at the presets' lowest score
    merge into a few faces, and a loop of array operations per face over what remains costs more."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    x0, y0, x1, y1 = boxes[:, :4].T
    areas = (x1 - x0) * (y1 - y0)
    width = np.clip(np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0), 0, None)
    height = np.clip(np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0), 0, None)
    overlap = width * height
    union = areas[:, None] + areas - overlap
    merges = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0) > SUPPRESSION_IOU
    weighted = boxes * scores[:, None]
    remaining = np.ones(len(scores), bool)
    found = []
    for top in range(len(scores)):
        if not remaining[top]:
            continue
        taken = merges[top] & remaining
        taken[top] = True
        remaining &= ~taken
        mx0, my0, mx1, my1, *eyes = (weighted[taken].sum(axis=0) / scores[taken].sum()).tolist()
        right_x, right_y, left_x, left_y = eyes or (0.0, 0.0, 0.0, 0.0)
        found.append(Candidate(mx0, my0, mx1, my1, float(scores[top]), (right_x, right_y, left_x, left_y)))
    return found
