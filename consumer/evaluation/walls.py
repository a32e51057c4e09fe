"""Walls of faces: a crowd in which no face is large enough to stir a coarse pass.

A video call's gallery, a yearbook page, an audience seen from the stage: many
faces of about one small size and none larger. On WIDER's photos a crowd of
small faces almost always has larger ones nearby, which point the guided passes
at it; a wall has none. The walls are made from the portraits of
`../shared/data/large/` (`deepface_img*.jpg`, one face each): each portrait is cut
square around its face (`CUT` times the face's longer side), shrunk so that
its face is `height` px tall, and the cuts are laid side by side in rows on a
1024 x 768 canvas, cycling through the portraits. A portrait's face box is the
full-range detector's on the whole portrait, where the face is hundreds of
pixels tall and unambiguous (each portrait must give exactly one face at least
a tenth of its height), carried into the wall.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from consumer.detection.crops import padded_square
from consumer.detection.model_files import ModelKind
from consumer.detection.network import FaceDetector
from consumer.evaluation.recall import AnnotatedFace, AnnotatedImage
from consumer.imaging.types import Box

CUT = 2.0  # a portrait's cut, in multiples of its face's longer side
WALL_SIZE = (1024, 768)  # width, height: a WIDER photo's size
FACE_HEIGHTS = (16, 20, 24, 28, 36)  # the face heights of the walls the harness builds, in pixels


@dataclass(frozen=True)
class Portrait:
    """A square cut around a portrait's face, and the face's box in the cut."""

    pixels: np.ndarray
    face: Box


def portraits(folder: Path, models_dir: Path) -> list[Portrait]:
    """The square cuts of the `deepface_img*.jpg` portraits in `folder`, sorted by name. Raises
    FileNotFoundError when there are none, ValueError when a portrait does not give exactly one large face."""
    paths = sorted(folder.glob("deepface_img*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no portraits (deepface_img*.jpg) in {folder}")
    cuts = []
    with FaceDetector(ModelKind.FULL_RANGE, models_dir, 0.5) as detector:
        for path in paths:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"cannot read {path}")
            found = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            faces = [d.box for d in found if d.box.h * 10 >= bgr.shape[0]]
            if len(faces) != 1:
                raise ValueError(f"{path.name} gives {len(faces)} large faces, not one")
            cuts.append(_cut(bgr, faces[0]))
    return cuts


def _cut(bgr: np.ndarray, face: Box) -> Portrait:
    """The square `CUT` times `face`'s longer side around its centre, black beyond the portrait's border."""
    side = round(CUT * max(face.w, face.h))
    x0, y0 = round(face.centre.x - side / 2), round(face.centre.y - side / 2)
    return Portrait(padded_square(bgr, x0, y0, side), Box(face.x - x0, face.y - y0, face.w, face.h))


def wall(cuts: list[Portrait], face_height: int, size: tuple[int, int] = WALL_SIZE) -> tuple[np.ndarray, list[Box]]:
    """A BGR wall of `size` whose faces are about `face_height` px tall, and their boxes: the cuts in rows,
    cycling through them, on a gray canvas."""
    width, height = size
    canvas = np.full((height, width, 3), 90, np.uint8)
    boxes = []
    index = 0
    y = 0
    while True:
        row_height = 0
        x = 0
        while True:
            cut = cuts[index % len(cuts)]
            factor = face_height / cut.face.h
            side = round(cut.pixels.shape[0] * factor)
            if x + side > width or y + side > height:
                break
            canvas[y : y + side, x : x + side] = cv2.resize(cut.pixels, (side, side), interpolation=cv2.INTER_AREA)
            face = cut.face
            boxes.append(
                Box(x + round(face.x * factor), y + round(face.y * factor), round(face.w * factor), face_height)
            )
            index += 1
            x += side
            row_height = max(row_height, side)
        if row_height == 0:
            return canvas, boxes
        y += row_height


def build_walls(
    portraits_folder: Path, folder: Path, models_dir: Path, heights: tuple[int, ...] = FACE_HEIGHTS
) -> list[AnnotatedImage]:
    """One wall per face height, written to `folder` as PNG, with its faces annotated."""
    cuts = portraits(portraits_folder, models_dir)
    images = []
    for face_height in heights:
        pixels, boxes = wall(cuts, face_height)
        path = folder / f"wall-{face_height}px.png"
        cv2.imwrite(str(path), pixels)
        faces = tuple(AnnotatedFace(box) for box in boxes)
        images.append(AnnotatedImage(path, pixels.shape[1], pixels.shape[0], faces, "walls"))
    return images
