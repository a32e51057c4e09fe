"""Helpers shared by the tests: paths, the shared annotated photos, image comparison."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from consumer.evaluation.recall import load_annotations
from consumer.imaging.types import Box

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
FACES = SHARED_DATA / "faces"
SAMPLES = REPO / "samples"
BIN = REPO / ".venv" / "bin"
GO_TOOLS = REPO / ".cache" / "go" / "bin"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test saying `what` did not happen in `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def go_tool(name: str) -> str:
    """Path of a program `make tools` built (ops/go_tools.py)."""
    binary = GO_TOOLS / name
    assert binary.exists(), f"{name} is missing: run `make tools`"
    return str(binary)


@dataclass(frozen=True)
class AnnotatedImage:
    path: Path
    faces: list[tuple[int, int, int, int]]


@cache
def annotated_images() -> list[AnnotatedImage]:
    """The wider-val photos of ../shared/data/faces with their valid face boxes, sorted by name."""
    images = [
        AnnotatedImage(image.path, [face.box.as_tuple() for face in image.faces if not face.invalid])
        for image in load_annotations(FACES / "annotations.jsonl", "wider-val")
    ]
    return sorted(images, key=lambda i: i.path.name)


def images_with_large_faces(count: int, min_height: int = 150) -> list[AnnotatedImage]:
    """The first `count` photos (by name) whose faces are all at least `min_height` px tall."""
    chosen = [i for i in annotated_images() if i.faces and min(f[3] for f in i.faces) >= min_height]
    return chosen[:count]


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    return Box(*a).iou(Box(*b))


def read_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    pixels = cv2.imread(str(path), flags)
    assert pixels is not None, f"{path} is not a readable image"
    return pixels


def decode(data: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None, "not a decodable image"
    return pixels


def region_change(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(mean absolute difference, share of detail left) inside `box`; detail is Laplacian variance."""
    x, y, w, h = box
    a = cv2.cvtColor(before[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(after[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
    diff = float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))
    detail_before = float(cv2.Laplacian(a, cv2.CV_64F).var())
    detail_after = float(cv2.Laplacian(b, cv2.CV_64F).var())
    return diff, detail_after / max(detail_before, 1e-6)


def outside_change(before: np.ndarray, after: np.ndarray, regions: list[tuple[int, int, int, int]]) -> float:
    """Mean absolute difference over the pixels outside every region."""
    keep = np.ones(before.shape[:2], bool)
    for x, y, w, h in regions:
        keep[y : y + h, x : x + w] = False
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).mean(axis=2)
    return float(diff[keep].mean())
