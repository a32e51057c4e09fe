#!/usr/bin/env python3
"""`faceguard anonymize` on a folder: --jobs 2 against --jobs 1 and against deface, in one run.

    .venv/bin/python ops/bench_anonymize.py [--images 200] [--preset balanced]

Copies the first `--images` annotated photos of ../shared/data/faces (about 1024 px) into a temporary
folder and masks them three times, each run timed from the command's start to its exit (model loading
included, as a person at a terminal waits for it): `faceguard anonymize DIR -o OUT --jobs 1`, the same
with `--jobs 2`, and deface 1.5.0 (its own virtualenv, `ops/eval_recall.py` installs it; default settings,
CPU) on the same folder. Prints images/s and the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops"))

from eval_recall import deface_python  # noqa: E402

from tests.support import annotated_images  # noqa: E402


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--preset", default="balanced")
    args = parser.parse_args()
    photos = [image.path for image in annotated_images()[: args.images]]
    faceguard = str(REPO / ".venv" / "bin" / "faceguard")
    deface = str(deface_python().parent / "deface")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "photos"
        folder.mkdir()
        for photo in photos:
            shutil.copy(photo, folder / photo.name)
        rates = {}
        for jobs in (1, 2):
            out = Path(work) / f"out-{jobs}"
            seconds = timed(
                [faceguard, "anonymize", str(folder), "-o", str(out), "--jobs", str(jobs), "--preset", args.preset]
            )
            rates[f"faceguard --jobs {jobs}"] = len(photos) / seconds
        defaced = Path(work) / "defaced"
        shutil.copytree(folder, defaced)
        seconds = timed([deface, str(defaced)])
        rates["deface 1.5.0"] = len(photos) / seconds
    print(f"{len(photos)} photos of ../shared/data/faces, preset {args.preset}, whole command timed:")
    for name, rate in rates.items():
        print(f"  {name:20s} {rate:6.2f} images/s")
    one, two, peer = rates["faceguard --jobs 1"], rates["faceguard --jobs 2"], rates["deface 1.5.0"]
    print(f"  --jobs 2 / --jobs 1: {two / one:.2f};  --jobs 2 / deface: {two / peer:.2f}")
    print(f"  --jobs 1 / deface: {one / peer:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
