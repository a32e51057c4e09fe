#!/usr/bin/env python3
"""Recall and precision of Faceguard's detector, side by side with deface in the same run.

    .venv/bin/python ops/eval_recall.py [--suite faces|wider-tune|nofaces|large|walls|facefree]... [--split even|odd]
                                        [--limit N] [--preset P]... [--peer deface]

For each suite of `../shared/data` (`consumer/evaluation/suites.py`) prints the
table of `faceguard eval`: masked share per face height, WIDER hard list,
detections matching no face and their share, photos with a detection, non-face
pixels masked, detection ms per image; on `nofaces` (and on `facefree`, 84
more face-free photos fetched by `ops/fetch_facefree.py`) every detection is a false
mask, and on `large` (no annotations) the detections per photo are listed too.
The verifier is fitted on the even-numbered photos of `wider-tune`: report it
with `--suite wider-tune --split odd`, and on `faces` (never fitted on). With `--peer deface`, deface 1.5.0 is
installed from PyPI into its own virtual environment under .cache/peers (once),
runs CenterFace on the OpenCV backend at its default threshold on the same
images, and is scored the same way twice: with its own default mask scale (1.3:
each side grown by 30% of the box), as its masks cover faces, and on its bare
boxes. Both run on one core (LiteRT runs single-threaded here; deface's
OpenCV network is held to one thread), so the detection times compare CPU per
image. The peer is never needed by the test suite. With `--monochrome`, every
photo is first turned gray (a copy in a temporary folder, which both read): what
a black-and-white archive gets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.config import Settings  # noqa: E402
from consumer.detection.strategy import PRESETS, Preset  # noqa: E402
from consumer.evaluation.recall import (  # noqa: E402
    AnnotatedImage,
    Half,
    Report,
    evaluate_strategy,
    format_per_image,
    format_table,
    score_image,
)
from consumer.evaluation.suites import Suite, suite_images  # noqa: E402
from consumer.imaging.types import Box  # noqa: E402

DEFACE = "deface==1.5.0"
DEFACE_MARGIN = 0.3  # deface's default --mask-scale 1.3 grows each side by 30% of the box
PEERS = REPO / ".cache" / "peers"


def deface_python() -> Path:
    """deface's own interpreter, installing it on first use."""
    home = PEERS / "deface"
    python = home / "bin" / "python"
    if not python.exists():
        venv.create(home, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DEFACE], check=True)
    return python


def run_deface(images: list[AnnotatedImage]) -> dict[str, Report]:
    """deface's detections scored twice: as its masks cover them (mask scale 1.3) and as bare boxes."""
    done = subprocess.run(
        [str(deface_python()), str(REPO / "ops" / "peers" / "deface_boxes.py")],
        input=json.dumps([str(image.path) for image in images]),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    results = {entry["path"]: entry for entry in map(json.loads, done.stdout.splitlines())}
    masks, boxes_only = Report(), Report()
    for image in images:
        entry = results[str(image.path)]
        boxes = [Box(*box) for box in entry["boxes"]]
        scored = image
        if not image.faces:  # unannotated: its size as read (EXIF orientation applied)
            scored = dataclasses.replace(image, width=entry["width"], height=entry["height"])
        masks.add(score_image(scored, boxes, DEFACE_MARGIN, entry["ms"]), image.path.name)
        boxes_only.add(score_image(scored, boxes, 0.0, entry["ms"]), image.path.name)
    return {"deface masks": masks, "deface boxes": boxes_only}


def gray_copies(images: list[AnnotatedImage], folder: Path) -> list[AnnotatedImage]:
    """`images` turned gray: 8-bit grayscale copies in `folder` (JPEG quality 95; PNG stays PNG)."""
    copies = []
    for index, image in enumerate(images):
        gray = cv2.imread(str(image.path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise SystemExit(f"eval-recall: cannot read {image.path}")
        suffix = ".png" if image.path.suffix.lower() == ".png" else ".jpg"
        path = folder / f"{index:05d}-{image.path.stem}{suffix}"
        cv2.imwrite(str(path), gray, [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix == ".jpg" else [])
        copies.append(dataclasses.replace(image, path=path))
    return copies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--suite", action="append", type=Suite, choices=list(Suite), help="photo set (repeatable; default: faces)"
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos of each suite")
    parser.add_argument(
        "--split",
        type=Half,
        choices=list(Half),
        default=Half.ALL,
        help="only the even- or odd-numbered photos (the verifier is fitted on wider-tune's even ones)",
    )
    parser.add_argument("--preset", action="append", type=Preset, choices=list(Preset), help="default: all presets")
    parser.add_argument("--peer", choices=["deface"], help="also run this peer on the same images")
    parser.add_argument("--monochrome", action="store_true", help="turn every photo gray first (both read the copy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faceguard-gray-") as folder:  # the gray copies, gone after
        settings = Settings()
        summaries = {}
        for suite in args.suite or [Suite.FACES]:
            images = suite_images(
                suite, split=args.split, limit=args.limit, work=Path(folder), models_dir=settings.models_dir
            )
            if args.monochrome:
                images = gray_copies(images, Path(folder))
            reports: dict[str, Report] = {
                f"faceguard {preset.value}": evaluate_strategy(
                    images, PRESETS[preset], settings.models_dir, settings.mask_margin
                )
                for preset in args.preset or list(Preset)
            }
            if args.peer == "deface":
                reports.update(run_deface(images))
            print(f"\n{suite.value}: {len(images)} photos ({args.split.value}){', gray' if args.monochrome else ''}")
            print(format_table(reports))
            if not suite.annotated:
                print(format_per_image(reports))
            summaries[suite.value] = {name: report.summary() for name, report in reports.items()}
    print(json.dumps(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
