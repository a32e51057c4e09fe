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

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from consumer.detection.colour import detector_view
from consumer.detection.crops import padded_square, rgb_view, scaled_size
from consumer.detection.merge import drop_nested, suppress_overlaps
from consumer.detection.model_files import MODEL_FILES, ModelKind
from consumer.detection.network import RUNTIME, FaceDetector
from consumer.detection.strategy import DetectorKey, Pass, SecondLook, Strategy
from consumer.detection.tiling import Window, holding, point_to_source, to_source, windows
from consumer.detection.turns import Turn, turned, unturned, unturned_eyes
from consumer.detection.verify import Verifier, load_verifier_model
from consumer.imaging.types import Box, Detection, Pixels, Point
from schemas import ModelInfo

NESTED = 0.8  # a face lying this much within a larger kept face is part of it (an eye, half the face)


class ScanDetector:
    """Finds faces in RGB images by running every pass of a `Strategy`."""

    def __init__(self, strategy: Strategy, models_dir: Path) -> None:
        """Load each model the strategy uses. Raises SetupError when a model file is missing or altered."""
        self.strategy = strategy
        # One network per model and side: detectors differing only in their score share it (the score only
        # filters and merges its outputs), which saves an interpreter's memory per thread at the same speed.
        self._networks: dict[tuple[ModelKind, int], FaceDetector] = {}
        self._verifier: Verifier | None = None
        try:
            for model, threshold, side in strategy.detectors:
                if (model, side) not in self._networks:
                    self._networks[model, side] = FaceDetector(model, models_dir, threshold, side)
            if strategy.verify is not None:
                self._verifier = Verifier(models_dir, load_verifier_model())
        except BaseException:
            self.close()
            raise
        files = [MODEL_FILES[model] for model in strategy.models]
        verifier = "" if self._verifier is None else f"+{self._verifier.model.version}"
        self.info = ModelInfo(
            name="+".join(f.name for f in files) + verifier,
            version=f"{RUNTIME}/" + "+".join(f"sha256:{f.sha256[:12]}" for f in files) + verifier,
            min_confidence=min(p.min_score for p in strategy.passes),
            preset=strategy.preset.value,
            passes=strategy.describe(),
        )

    def candidates(self, pixels: Pixels) -> list[Detection]:
        """What the passes and the second look propose in decoded `pixels`, before verification: boxes in its
        pixels and clipped to it, best score first. `pixels` are looked at as they are: `review` and `detect`
        hand it the detector's view of a monochrome photo (`detector_view`)."""
        height, width = pixels.shape[:2]
        passes = self.strategy.passes
        scales = [whole_scale(p.model, width, height) if p.scale is None else p.scale for p in passes]
        viewed = [s for p, s in zip(passes, scales, strict=True) if not p.guided]  # scales still to be viewed
        views: dict[float, np.ndarray] = {}  # the RGB image at each of those scales, kept until its last pass
        found: list[Detection] = []
        hints: list[Point] = []  # centres of the last pass's small weak faces, in source pixels, for a guided pass
        for scan_pass, scale in zip(passes, scales, strict=True):
            side = scan_pass.side
            tiles: Iterable[tuple[Window, np.ndarray]]
            if scan_pass.guided:
                swept = scan_pass.sweep is not None
                tiles = _guided_tiles(pixels, scale, side, self.strategy.tile_overlap, hints, sweep=swept)
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

    @property
    def min_probability(self) -> float | None:
        """The verifier's probability from which a candidate is a face (None: the strategy verifies nothing)."""
        return None if self.strategy.verify is None else self.strategy.verify.min_probability

    def detect(self, pixels: Pixels, min_probability: float | None = None) -> list[Detection]:
        """Faces in decoded `pixels` (gray, BGR or BGRA; 8 or 16 bit), boxes in its pixels and clipped to it,
        best score first. With a verifier, each carries its probability of being a face, those under
        `min_probability` (default: the strategy's; large ones from the strategy's own lower one) are left out,
        and so are those lying within a larger face (`drop_nested`)."""
        return [d for d, kept in self.review(pixels, min_probability) if kept]

    def review(self, pixels: Pixels, min_probability: float | None = None) -> list[tuple[Detection, bool]]:
        """Every candidate, verified when the strategy verifies, and whether `detect` keeps it."""
        view, monochrome = detector_view(pixels)
        candidates = self.candidates(view)
        verify = self.strategy.verify
        if self._verifier is None or verify is None:
            return [(d, True) for d in candidates]
        threshold = verify.min_probability if min_probability is None else min_probability
        verifier = self._verifier
        verified = [dataclasses.replace(d, verification=verifier.probability(view, d, monochrome)) for d in candidates]
        passed = [d for d in verified if verify.keeps(d.verification or 0.0, d.box.h, threshold)]
        kept = {id(d) for d in drop_nested(passed, NESTED)}
        return [(d, id(d) in kept) for d in verified]

    def _run(
        self,
        scan_pass: Pass,
        tiles: Iterable[tuple[Window, np.ndarray]],
        scale: float,
        size: tuple[int, int],
    ) -> tuple[list[Detection], list[Point]]:
        """Run the pass's model on each tile (a window of the source resized by `scale`, and its RGB pixels):
        the faces it keeps and the centres of its hints, mapped back to the `size` source."""
        detector = self.strategy.detector_of(scan_pass)
        found = []
        hints = []
        views = (Turn.NONE, Turn.MIRROR) if scan_pass.mirrored else (Turn.NONE,)
        for window, rgb in tiles:
            in_tile_hints = []
            for turn in views:
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
                        in_tile_hints.append(box.centre)
                    if kept:
                        eyes = None
                        if detection.eyes is not None:
                            right, left = unturned_eyes(detection.eyes, turn, rgb.shape[1], rgb.shape[0])
                            eyes = (point_to_source(right, window, scale), point_to_source(left, window, scale))
                        found.append(Detection(box=box, score=detection.score, eyes=eyes))
            if not (window.swept and scan_pass.sweep and len(in_tile_hints) < scan_pass.sweep.crowd):
                hints += in_tile_hints  # a swept tile's hints only when they are a crowd
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
        crop = rgb_view(padded_square(pixels, x0, y0, span), side / span)
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
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None

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
    pixels: Pixels, scale: float, side: int, overlap: float, hints: list[Point], *, sweep: bool = False
) -> Iterator[tuple[Window, np.ndarray]]:
    """The windows of the image resized by `scale` that hold a hint, and with `sweep` the side-by-side windows
    whose centre none of those holds (`sweeping`), each cut from `pixels` and resized when it is reached: the
    whole image is never resized for them, and a sweep over all of it holds one tile at a time."""
    height, width = pixels.shape[:2]
    size = scaled_size(width, height, scale)
    hinted = holding(windows(*size, side, overlap), hints, scale)
    for window in hinted + (sweeping(size, side, hinted) if sweep else []):
        x0, y0 = math.floor(window.x / scale), math.floor(window.y / scale)
        x1 = min(width, math.ceil((window.x + side) / scale))
        y1 = min(height, math.ceil((window.y + side) / scale))
        yield window, rgb_view(pixels[y0:y1, x0:x1], scale)


def sweeping(size: tuple[int, int], side: int, hinted: list[Window]) -> list[Window]:
    """The windows of `side` side by side over an image of `size` (overlapping only where the last one in a
    row or column ends at the border) whose centre no window of `hinted` holds."""
    return [
        dataclasses.replace(w, swept=True)
        for w in windows(*size, side, overlap=0.0)
        if not any(h.x <= w.x + side / 2 < h.x + h.side and h.y <= w.y + side / 2 < h.y + h.side for h in hinted)
    ]


def whole_scale(model: ModelKind, width: int, height: int) -> float:
    """The scale a whole-image pass resizes the image by: down by the largest whole factor that leaves its
    long side at least the network's input (128 or 192 px), so the detector shrinks it at most twofold more.
    Handing the detector the full photo instead gave no better recall, and cost a full-size RGB copy of
    photos of a few megapixels and the detector's own copy of that."""
    return 1.0 / max(1, max(width, height) // MODEL_FILES[model].input_side)
