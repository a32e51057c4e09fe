"""MediaPipe's ceiling: which annotated faces any view of BlazeFace finds at all, and at what score.

A view is one model over the image at one scale (tiled like a strategy's pass, or
whole), optionally mirrored or turned a quarter. `ops/detector_ceiling.py` runs a
grid of views far larger than any preset can afford and reports, per face height
and score threshold, the share of faces that at least one view detects (a box
with IoU >= `NO_MATCH_IOU` with the face: a detection of that face, not a box
that happens to cover it), and the share of all candidates that match no face.
No strategy built from these views can find a face none of them finds, and it
can only keep a face's weak candidate by keeping the false ones scoring alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from consumer.detection.crops import rgb_view
from consumer.detection.model_files import MODEL_FILES, ModelKind
from consumer.detection.network import FaceDetector
from consumer.detection.scan import cut_tiles, whole_scale
from consumer.detection.tiling import Window, to_source
from consumer.detection.turns import Turn, turned, unturned
from consumer.evaluation.recall import HEIGHT_BUCKETS, NO_MATCH_IOU, AnnotatedImage, bucket_of
from consumer.imaging.types import Detection, Pixels


@dataclass(frozen=True)
class View:
    model: ModelKind
    scale: float | None  # None: the whole image, fitted into the network's input
    turn: Turn = Turn.NONE


def view_detections(detector: FaceDetector, pixels: Pixels, view: View, overlap: float) -> list[Detection]:
    """Every face `detector` (the view's model) finds in the view of `pixels`, boxes in `pixels`' coordinates."""
    height, width = pixels.shape[:2]
    side = MODEL_FILES[view.model].input_side
    scale = whole_scale(view.model, width, height) if view.scale is None else view.scale
    image = rgb_view(pixels, scale)
    scaled_h, scaled_w = image.shape[:2]
    image = turned(image, view.turn)
    found = []
    for window, tile in cut_tiles(image, None if view.scale is None else side, overlap):
        for detection in detector.detect(tile):
            in_view = to_source(detection.box, window, 1.0, image.shape[1], image.shape[0])
            box = unturned(in_view, view.turn, scaled_w, scaled_h)
            source = to_source(box, Window(0, 0, 0), scale, width, height)
            if source.w > 0 and source.h > 0:
                found.append(Detection(box=source, score=detection.score))
    return found


@dataclass(frozen=True)
class FaceSeen:
    """One valid annotated face: its height, and per view the best score of a detection of it."""

    height: int
    best: dict[View, float]

    def found(self, views: Iterable[View], threshold: float) -> bool:
        return any(self.best.get(v, 0.0) >= threshold for v in views)


@dataclass
class CeilingStudy:
    """Faces as the views saw them, and every candidate's (view, score, whether it matches no face)."""

    faces: list[FaceSeen] = field(default_factory=list)
    candidates: list[tuple[View, float, bool]] = field(default_factory=list)

    def add(self, image: AnnotatedImage, found: dict[View, list[Detection]]) -> None:
        for view, detections in found.items():
            for d in detections:
                unmatched = all(d.box.iou(f.box) < NO_MATCH_IOU for f in image.faces)
                self.candidates.append((view, d.score, unmatched))
        for face in image.faces:
            if face.invalid or face.box.w == 0 or face.box.h == 0:
                continue
            best = {}
            for view, detections in found.items():
                scores = [d.score for d in detections if d.box.iou(face.box) >= NO_MATCH_IOU]
                if scores:
                    best[view] = max(scores)
            self.faces.append(FaceSeen(face.box.h, best))

    def row(self, views: Sequence[View], threshold: float) -> dict[str, float]:
        """Shares of faces found by any of `views` at `threshold`, overall and per height bucket, and the
        share of those views' candidates at `threshold` that match no face (NaN where there is nothing to count)."""
        chosen = set(views)
        row = {"all": _mean(f.found(chosen, threshold) for f in self.faces)}
        for label, _, _ in HEIGHT_BUCKETS:
            row[label] = _mean(f.found(chosen, threshold) for f in self.faces if bucket_of(f.height) == label)
        row["unmatched"] = _mean(u for v, s, u in self.candidates if v in chosen and s >= threshold)
        row["candidates"] = sum(1 for v, s, _ in self.candidates if v in chosen and s >= threshold)
        return row


def _mean(flags: Iterable[bool]) -> float:
    """The share of true flags; NaN when there are none."""
    values = list(flags)
    return sum(values) / len(values) if values else math.nan
