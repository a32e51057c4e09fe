"""The detect stage as the pipeline runs it: a strategy's passes over one image.

`ScanDetector` is built once per worker thread (like the `FaceDetector`s it owns,
one per model the strategy uses) and is never shared between threads.

It takes the decoded pixels as they are (gray, BGR or BGRA, 8 or 16 bit) and
makes an 8-bit RGB copy of the image only at each scale a pass needs, after
resizing: a 24-megapixel photo is never copied at full size for detection. A
guided pass cuts its few tiles from the decoded pixels instead of resizing the
whole image.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from consumer.detection.merge import suppress_overlaps
from consumer.detection.model_files import MODEL_FILES, ModelKind
from consumer.detection.network import RUNTIME, FaceDetector
from consumer.detection.strategy import DetectorKey, Pass, SecondLook, Strategy
from consumer.detection.tiling import Window, holding, to_source, windows
from consumer.detection.turns import Turn, turned, unturned
from consumer.imaging.decode import to_rgb8
from consumer.imaging.types import Box, Detection, Pixels, Point
from schemas import ModelInfo


class ScanDetector:
    """Finds faces in RGB images by running every pass of a `Strategy`."""

    def __init__(self, strategy: Strategy, models_dir: Path) -> None:
        """Load each model the strategy uses. Raises SetupError when a model file is missing or altered."""
        self.strategy = strategy
        # One network per model and side: detectors differing only in their score share it (the score only
        # filters and merges its outputs), which saves an interpreter's memory per thread at the same speed.
        self._networks: dict[tuple[ModelKind, int], FaceDetector] = {}
        try:
            for model, threshold, side in strategy.detectors:
                if (model, side) not in self._networks:
                    self._networks[model, side] = FaceDetector(model, models_dir, threshold, side)
        except BaseException:
            self.close()
            raise
        files = [MODEL_FILES[model] for model in strategy.models]
        self.info = ModelInfo(
            name="+".join(f.name for f in files),
            version=f"{RUNTIME}/" + "+".join(f"sha256:{f.sha256[:12]}" for f in files),
            min_confidence=min(p.min_score for p in strategy.passes),
            preset=strategy.preset.value,
            passes=strategy.describe(),
        )

    def detect(self, pixels: Pixels) -> list[Detection]:
        """Faces in decoded `pixels` (gray, BGR or BGRA; 8 or 16 bit), boxes in its pixels and clipped to it,
        best score first."""
        height, width = pixels.shape[:2]
        passes = self.strategy.passes
        scales = [whole_scale(p.model, width, height) if p.scale is None else p.scale for p in passes]
        viewed = [s for p, s in zip(passes, scales, strict=True) if not p.guided]  # scales still to be viewed
        views: dict[float, np.ndarray] = {}  # the RGB image at each of those scales, kept until its last pass
        found: list[Detection] = []
        hints: list[Point] = []  # centres of the last pass's small weak faces, in source pixels, for a guided pass
        for scan_pass, scale in zip(passes, scales, strict=True):
            side = scan_pass.side
            if scan_pass.guided:
                tiles = _guided_tiles(pixels, scale, side, self.strategy.tile_overlap, hints)
            else:
                view = views.get(scale)
                if view is None:
                    view = views[scale] = rgb_view(pixels, scale)
                viewed.remove(scale)
                if scale not in viewed:
                    del views[scale]
                tiles = cut_tiles(view, None if scan_pass.scale is None else side, self.strategy.tile_overlap)
                del view
            faces, new_hints = self._run(scan_pass, tiles, scale, (width, height))
            found += faces
            hints = new_hints
        merged = suppress_overlaps(found, self.strategy.merge_iou)
        look = self.strategy.second_look
        return merged if look is None else self._second_look(merged, pixels, look)

    def _run(
        self,
        scan_pass: Pass,
        tiles: list[tuple[Window, np.ndarray]],
        scale: float,
        size: tuple[int, int],
    ) -> tuple[list[Detection], list[Point]]:
        """Run the pass's model on each tile (a window of the source resized by `scale`, and its RGB pixels):
        the faces it keeps and the centres of its hints, mapped back to the `size` source."""
        detector = self.strategy.detector_of(scan_pass)
        found = []
        hints = []
        views = (Turn.NONE, Turn.MIRROR) if scan_pass.mirrored else (Turn.NONE,)
        for (window, rgb), turn in itertools.product(tiles, views):
            for detection in self._detect(detector, turned(rgb, turn)):
                kept = scan_pass.keep(detection.score, detection.box.h)
                hinted = scan_pass.hint(detection.score, detection.box.h)
                if not (kept or hinted):
                    continue
                in_tile = unturned(detection.box, turn, rgb.shape[1], rgb.shape[0])
                box = to_source(in_tile, window, scale, *size)
                if box.w <= 0 or box.h <= 0:
                    continue
                if hinted:
                    hints.append(box.centre)
                if kept:
                    found.append(Detection(box=box, score=detection.score))
        return found, hints

    def _second_look(self, merged: list[Detection], pixels: Pixels, look: SecondLook) -> list[Detection]:
        """`merged` without the weak small detections the second look does not find again, in the same order."""
        pending = [i for i, d in enumerate(merged) if look.needed(d.score, d.box.h)]  # best score first
        dropped = set()
        while pending:
            box = merged[pending[0]].box
            wide = look.widens(box, [merged[i].box for i in pending[1:]])
            seen = self._look_at(box, pixels, look, wide)
            if not look.finds(box, seen):
                dropped.add(pending[0])
            pending = [
                i
                for i in pending[1:]
                if not (look.finds(merged[i].box, seen) and look.shares(box, merged[i].box, wide))
            ]
        return [d for i, d in enumerate(merged) if i not in dropped]

    def _look_at(self, box: Box, pixels: Pixels, look: SecondLook, wide: bool) -> list[Point]:
        """The centres, in source pixels, of the faces the second look finds in its crop around `box`."""
        side = look.side(wide)
        span = look.span(box, wide)
        x0, y0 = round(box.centre.x - span / 2), round(box.centre.y - span / 2)
        crop = rgb_view(_crop(pixels, x0, y0, span), side / span)
        factor = crop.shape[1] / span  # crop pixels per source pixel
        found = self._detect(look.detector(wide), crop)  # at the look's score: no filter needed
        return [Point(x0 + d.box.centre.x / factor, y0 + d.box.centre.y / factor) for d in found]

    def _detect(self, detector: DetectorKey, rgb: np.ndarray) -> list[Detection]:
        """The faces `detector` (model, score, side) finds in `rgb`."""
        model, score, side = detector
        return self._networks[model, side].detect(rgb, score)

    def close(self) -> None:
        for network in self._networks.values():
            network.close()
        self._networks.clear()

    def __enter__(self) -> ScanDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def cut_tiles(view: np.ndarray, side: int | None, overlap: float) -> list[tuple[Window, np.ndarray]]:
    """`view` cut into overlapping square tiles of `side`, each with its window; `side` None: the whole
    view as one tile, which the detector fits into the network's input."""
    if side is None:
        return [(Window(0, 0, max(view.shape[:2])), view)]
    cuts = windows(view.shape[1], view.shape[0], side, overlap)
    return [(w, view[w.y : w.y + side, w.x : w.x + side]) for w in cuts]


def _guided_tiles(
    pixels: Pixels, scale: float, side: int, overlap: float, hints: list[Point]
) -> list[tuple[Window, np.ndarray]]:
    """The windows of the image resized by `scale` that hold a hint, each cut from `pixels` and resized:
    the whole image is never resized for them."""
    height, width = pixels.shape[:2]
    tiles = []
    for window in holding(windows(*_scaled_size(width, height, scale), side, overlap), hints, scale):
        x0, y0 = math.floor(window.x / scale), math.floor(window.y / scale)
        x1 = min(width, math.ceil((window.x + side) / scale))
        y1 = min(height, math.ceil((window.y + side) / scale))
        tiles.append((window, rgb_view(pixels[y0:y1, x0:x1], scale)))
    return tiles


def whole_scale(model: ModelKind, width: int, height: int) -> float:
    """The scale a whole-image pass resizes the image by: down by the largest whole factor that leaves its
    long side at least the network's input (128 or 192 px), so the detector shrinks it at most twofold more.
    Handing the detector the full photo instead gave no better recall, and cost a full-size RGB copy of
    photos of a few megapixels and the detector's own copy of that."""
    return 1.0 / max(1, max(width, height) // MODEL_FILES[model].input_side)


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def rgb_view(pixels: Pixels, scale: float) -> np.ndarray:
    """An 8-bit RGB copy of `pixels` resized by `scale`, converted in place when resizing made a copy anyway."""
    if scale == 1.0:
        return to_rgb8(pixels)
    size = _scaled_size(pixels.shape[1], pixels.shape[0], scale)
    if scale < 1 and (1 / scale).is_integer() and min(size) > 1:
        # By a whole factor, given as such: OpenCV's area averaging then takes its fast path; given a target
        # size, it does not.
        resized = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    else:
        # Enlarging (the second look's crop around a face under 28 px): bicubic, which masked more faces than
        # bilinear (docs/detection.md).
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(pixels, size, interpolation=interpolation)
    if resized.dtype == np.uint8 and resized.ndim == 3 and resized.shape[2] == 3:
        return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=resized)
    return to_rgb8(resized)


def _crop(pixels: Pixels, x0: int, y0: int, span: int) -> np.ndarray:
    """The `span` x `span` square of `pixels` from (`x0`, `y0`), black where it leaves the image."""
    height, width = pixels.shape[:2]
    square = np.zeros((span, span, *pixels.shape[2:]), pixels.dtype)
    left, top = max(0, x0), max(0, y0)
    right, bottom = min(width, x0 + span), min(height, y0 + span)
    square[top - y0 : bottom - y0, left - x0 : right - x0] = pixels[top:bottom, left:right]
    return square
