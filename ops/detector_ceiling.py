#!/usr/bin/env python3
"""MediaPipe's ceiling on annotated photos: which faces any BlazeFace view finds at all.

    .venv/bin/python ops/detector_ceiling.py [--annotations FILE] [--limit N] [--half even|odd]

Runs every view of a grid far beyond any preset's budget (both models; short
range on tiles at 2x, 1x, 1/2, 1/4, 1/8 size and whole; full range on tiles at
1x, 3/4, 1/2, 3/8, 1/4 size and whole; each also mirrored, and the coarse ones
turned a quarter either way) and prints, per score threshold and set of views,
the share of faces with a detection of their own (IoU >= 0.2) per face height,
and the share of those views' candidates that match no face. About 2 seconds
per 1024-px photo on one core. See `consumer/evaluation/ceiling.py`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumer.config import Settings
from consumer.detection.model_files import ModelKind
from consumer.detection.network import FaceDetector
from consumer.detection.strategy import PRESETS, Preset
from consumer.detection.turns import Turn
from consumer.evaluation.ceiling import CeilingStudy, View, view_detections
from consumer.evaluation.recall import DEFAULT_ANNOTATIONS, HEIGHT_BUCKETS, Half, half_of, load_annotations
from consumer.imaging.decode import decode_image

LOWEST_SCORE = 0.15
THRESHOLDS = (0.5, 0.3, 0.2)
TILE_OVERLAP = PRESETS[Preset.BALANCED].tile_overlap
SHORT, FULL = ModelKind.SHORT_RANGE, ModelKind.FULL_RANGE


def grid() -> list[View]:
    views = []
    for model, scales, turned_up_to in (
        (SHORT, (2.0, 1.0, 0.5, 0.25, 0.125), 0.5),
        (FULL, (1.0, 0.75, 0.5, 0.375, 0.25), 0.375),
    ):
        for scale in (*scales, None):
            views.append(View(model, scale))
            if scale != 2.0:  # mirroring the 2x tiles would double the study's cost
                views.append(View(model, scale, Turn.MIRROR))
            if scale is None or scale <= turned_up_to:
                views += [View(model, scale, Turn.CW), View(model, scale, Turn.CCW)]
    return views


# Sets of views to report: all, and the parts that show where the faces come from.
SUBSETS: dict[str, Callable[[View], bool]] = {
    "every view": lambda v: True,
    "upright, not mirrored": lambda v: v.turn is Turn.NONE,
    "upright or mirrored": lambda v: v.turn in (Turn.NONE, Turn.MIRROR),
    "short range only": lambda v: v.model is SHORT,
    "full range only": lambda v: v.model is FULL,
    "balanced's views, every tile": lambda v: (
        v.turn is Turn.NONE
        and ((v.model is FULL and v.scale is None) or (v.model is SHORT and v.scale in (1.0, 0.5, 0.25)))
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=Path, default=DEFAULT_ANNOTATIONS)
    parser.add_argument("--subset", default="wider-val")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--half", type=Half, choices=list(Half), default=Half.ALL)
    args = parser.parse_args()
    images = load_annotations(args.annotations, args.subset or None)
    images = images[: args.limit] if args.limit else images
    images = half_of(images, args.half)

    views = grid()
    settings = Settings()
    detectors = {m: FaceDetector(m, settings.models_dir, LOWEST_SCORE) for m in (SHORT, FULL)}
    study = CeilingStudy()
    started = time.perf_counter()
    try:
        for image in images:
            pixels = decode_image(image.path.read_bytes(), max_pixels=10**9).pixels
            study.add(image, {v: view_detections(detectors[v.model], pixels, v, TILE_OVERLAP) for v in views})
    finally:
        for detector in detectors.values():
            detector.close()
    seconds = time.perf_counter() - started
    print(f"{len(images)} images of {args.annotations} ({args.subset or 'all'}, {args.half}), {len(study.faces)} faces")
    print(f"{len(views)} views, {seconds / max(1, len(images)):.2f} s per image")
    print("share of faces with a detection of their own (IoU >= 0.2), and candidates matching no face")
    labels = ["all", *(label for label, _, _ in HEIGHT_BUCKETS)]
    print(
        f"{'views':<30}{'score':>6}" + "".join(f"{label:>8}" for label in labels) + f"{'no face':>9}{'cands/img':>10}"
    )
    for name, chosen in SUBSETS.items():
        subset = [v for v in views if chosen(v)]
        for threshold in THRESHOLDS:
            row = study.row(subset, threshold)
            cells = "".join(f"{_share(row[label]):>8}" for label in labels)
            per_image = row["candidates"] / max(1, len(images))
            print(f"{name:<30}{threshold:>6g}{cells}{_share(row['unmatched']):>9}{per_image:>10.0f}")
    return 0


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"


if __name__ == "__main__":
    sys.exit(main())
