#!/usr/bin/env python3
"""Fit the verifier's model on annotated photos, report it on photos it was not fitted on, and write it.

    .venv/bin/python ops/fit_verifier.py [--annotations FILE] [--preset balanced] [--limit N] [--c C]
                                         [--write consumer/detection/verifier-v7.json]

Runs the preset's proposal stage (its passes and second look, no verification)
over `wider-tune/` (800 WIDER val photos, disjoint from `faces/`), computes each
candidate's features (`consumer/detection/verify.py`: the detector's score,
FaceMesh's presence logit on the upright crop, the full-range relook's score,
size, the colour of its middle, the roll of its eye line, the person mask's
shares of it and around it) and labels it a face when it overlaps an annotated
face by IoU >= 0.3, not a face when by < 0.2 (those in between are left out).
Four logistic regressions (scikit-learn) are fitted on the even-numbered
photos: the first stage on what the detector and the colour say, the second
also on FaceMesh's presence, the third also on the person mask, the fourth also
on the relook; the verifier takes each look only where the stage before it is in
doubt (`DOUBT`). All are
reported on the odd-numbered photos: ROC AUC per candidate
height, and at several probability thresholds the share of true faces kept and
of false candidates kept. `--write` writes that model (fitted on the
even-numbered photos only, so that the odd-numbered ones and `faces/` stay held
out for `ops/eval_recall.py`); pin its printed sha256 in
`consumer/detection/verify.py`. The features of each photo are cached in
.cache/verifier/, keyed by the preset's passes and the feature names, so a
refit with other features or regularisation takes seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.config import Settings  # noqa: E402
from consumer.detection.colour import MONOCHROME_TINT, detector_view  # noqa: E402
from consumer.detection.scan import ScanDetector  # noqa: E402
from consumer.detection.strategy import PRESETS, Preset, Strategy  # noqa: E402
from consumer.detection.verify import BASE_FEATURES, LOOKS, Looker  # noqa: E402
from consumer.evaluation.recall import AnnotatedImage, load_annotations  # noqa: E402
from consumer.imaging.decode import decode_image, to_gray8  # noqa: E402

TUNE = REPO.parent / "shared" / "data" / "wider-tune" / "annotations.jsonl"
CACHE = REPO / ".cache" / "verifier"
FACE_IOU, NOT_FACE_IOU = 0.3, 0.2
# Monochrome photos: what the detector says, fitted on gray copies of the photos seen as the detector sees them
# (tinted, `consumer/detection/colour.py`); colour photos: the same and their colour.
FIRST_MONOCHROME = ("bias", "score", "log_height", "score*log_height", "roll")
FIRST = (*FIRST_MONOCHROME, "skin", "sat", "skin*log_height")
# For each look, the probabilities the stage before it leaves in doubt: the look is taken and the next stage
# decides. FaceMesh is skipped only where the first stage is sure (under 0.02 or over 0.98): 28% of the held-out
# colour candidates, and 3 of their 4,916 decisions differ from those with FaceMesh on all (docs/detection.md).
DOUBT = {"mesh": (0.02, 0.98), "person": (0.15, 0.6), "relook": (0.15, 0.6)}
HEIGHTS = ((16, 32), (32, 64), (64, 128), (128, 10**6))
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5)


def candidate_rows(
    images: list[AnnotatedImage], preset: Preset, models_dir: Path, monochrome: bool
) -> list[dict[str, float]]:
    """One row per labelled candidate: its base features, height, label and photo index (cached per photo).
    With `monochrome`, of each photo's gray copy, seen as the detector sees a monochrome photo."""
    strategy = proposals_of(preset)
    kind = ["monochrome", *map(str, MONOCHROME_TINT)] if monochrome else []
    key = hashlib.sha256("\n".join([*strategy.describe(), *BASE_FEATURES, *kind]).encode()).hexdigest()[:12]
    folder = CACHE / key
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float]] = []
    with ScanDetector(strategy, models_dir) as detector:
        looker = Looker(models_dir)
        for index, image in enumerate(images):
            cached = folder / f"{image.path.stem}.json"
            if not cached.exists():
                pixels = decode_image(image.path.read_bytes(), max_pixels=10**9).pixels
                if monochrome:
                    pixels, _ = detector_view(to_gray8(pixels))
                found = []
                for detection in detector.candidates(pixels):
                    best = max((detection.box.iou(face.box) for face in image.faces), default=0.0)
                    values = looker.features(pixels, detection)
                    for look in LOOKS:
                        values.update(looker.look(look, pixels, detection))
                    found.append({**values, "height": detection.box.h, "iou": best})
                cached.write_text(json.dumps(found))
            for row in json.loads(cached.read_text()):
                if row["iou"] >= FACE_IOU or row["iou"] < NOT_FACE_IOU:
                    rows.append({**row, "face": float(row["iou"] >= FACE_IOU), "image": float(index)})
            if index % 100 == 99:
                print(f"fit-verifier: {index + 1} of {len(images)} photos", file=sys.stderr)
        looker.close()
    return rows


def proposals_of(preset: Preset) -> Strategy:
    return dataclasses.replace(PRESETS[preset], verify=None)


def matrix(rows: list[dict[str, float]], features: tuple[str, ...]) -> np.ndarray:
    def value(row: dict[str, float], name: str) -> float:
        if "*" in name:
            left, right = name.split("*", 1)
            return row[left] * row[right]
        return row[name]

    return np.array([[value(row, name) for name in features] for row in rows])


def fit(rows: list[dict[str, float]], features: tuple[str, ...], c: float) -> np.ndarray:
    """Weights over `features` (the bias among them: the library's own intercept is off)."""
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=5000)
    model.fit(matrix(rows, features), [row["face"] for row in rows])
    return np.asarray(model.coef_[0])


def stage_features(first: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The features of each stage: the first's, then each adding what one look measures (`LOOKS`, in order),
    each feature also times the height."""
    stages = [first]
    for measured in LOOKS.values():
        stages.append((*stages[-1], *measured, *(f"{name}*log_height" for name in measured)))
    return stages


def cascade(
    rows: list[dict[str, float]], features: list[tuple[str, ...]], weights: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each row's probability as the verifier computes it, and for each look whether it was taken."""
    probability = 1 / (1 + np.exp(-(matrix(rows, features[0]) @ weights[0])))
    taken = np.ones(len(rows), bool)
    looked = []
    for look, stage, weight in zip(LOOKS, features[1:], weights[1:], strict=True):
        low, high = DOUBT[look]
        taken &= (probability >= low) & (probability <= high)
        looked.append(taken.copy())
        probability = np.where(taken, 1 / (1 + np.exp(-(matrix(rows, stage) @ weight))), probability)
    return probability, looked


def report(rows: list[dict[str, float]], probability: np.ndarray) -> None:
    face = np.array([row["face"] for row in rows]) == 1
    height = np.array([row["height"] for row in rows])
    score = np.array([row["score"] for row in rows])
    for low, high in HEIGHTS:
        inside = (height >= low) & (height < high)
        if face[inside].all() or not face[inside].any():
            continue
        auc, score_auc = roc_auc_score(face[inside], probability[inside]), roc_auc_score(face[inside], score[inside])
        print(f"  height {low}-{high}: {inside.sum()} candidates, AUC {auc:.3f} (detector score alone {score_auc:.3f})")
    print("  p >=   faces kept   false kept   false share of kept")
    for threshold in THRESHOLDS:
        kept = probability >= threshold
        true_kept, false_kept = (kept & face).sum(), (kept & ~face).sum()
        print(
            f"  {threshold:4.2f}   {true_kept / face.sum():9.1%}   {false_kept / (~face).sum():9.1%}"
            f"   {false_kept / max(1, kept.sum()):9.1%}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=Path, default=TUNE)
    parser.add_argument("--preset", type=Preset, choices=list(Preset), default=Preset.BALANCED)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--write", type=Path, help="refit on every photo and write the model file here")
    args = parser.parse_args()
    images = load_annotations(args.annotations)
    images = images[: args.limit] if args.limit else images
    variants = {"colour": (FIRST, False), "monochrome": (FIRST_MONOCHROME, True)}
    fitted: dict[str, object] = {}
    fitted_on: dict[str, int] = {}  # candidates of the even-numbered photos per variant
    for name, (first_features, monochrome) in variants.items():
        rows = candidate_rows(images, args.preset, Settings().models_dir, monochrome)
        even = [row for row in rows if row["image"] % 2 == 0]
        odd = [row for row in rows if row["image"] % 2 == 1]
        features = stage_features(first_features)
        weights = [fit(even, stage, args.c) for stage in features]
        print(
            f"{name}: {len(images)} photos of {args.annotations}; fitted on {len(even)} candidates of the even-numbered"
        )
        probability, looked = cascade(odd, features, weights)
        taken = ", ".join(f"{look} {share.mean():.0%}" for look, share in zip(LOOKS, looked, strict=True))
        print(f"held-out, {len(odd)} candidates of the odd-numbered photos (looked at: {taken}):")
        report(odd, probability)
        print("  the first stage alone:")
        report(odd, 1 / (1 + np.exp(-(matrix(odd, features[0]) @ weights[0]))))
        fitted[name] = {
            "stages": [
                {"features": list(stage), "weights": [round(float(w), 6) for w in weight]}
                for stage, weight in zip(features, weights, strict=True)
            ]
        }
        fitted_on[name] = len(even)
    if args.write:
        entry = {
            "version": f"{args.write.stem}-{datetime.date.today().isoformat()}",  # verifier-v7-2026-12-07
            **fitted,
            "doubt": {look: list(band) for look, band in DOUBT.items()},
            "fitted_on": f"{args.annotations.parent.name}, even-numbered of {len(images)} photos:"
            f" {fitted_on['colour']} candidates of {args.preset.value}'s proposals, {fitted_on['monochrome']} of"
            f" their gray copies' for the monochrome stages; faces IoU >= {FACE_IOU}, not faces < {NOT_FACE_IOU}",
        }
        data = (json.dumps(entry, indent=2) + "\n").encode()
        args.write.write_bytes(data)
        print(f"wrote {args.write}: sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
