#!/usr/bin/env python3
"""Fail unless exactly one OpenCV, opencv-python-headless, is installed in this interpreter's environment.

    .venv/bin/python ops/check_opencv.py

mediapipe declares opencv-contrib-python; two OpenCV distributions share the `cv2` package and
overwrite each other. `make venv` and the image's install (ops/install_image.sh) both run this.
Standard library only.
"""

from __future__ import annotations

import importlib.metadata
import sys

HEADLESS = "opencv-python-headless"


def opencv_distributions() -> list[str]:
    names = {(dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()}
    return sorted(name for name in names if name.startswith("opencv"))


def main() -> int:
    found = opencv_distributions()
    if found != [HEADLESS]:
        print(f"check-opencv: expected only {HEADLESS}, found {found or 'none'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
