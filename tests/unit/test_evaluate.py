"""Scoring masks against annotated faces: coverage, height buckets, detections matching no face."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from consumer.evaluation.recall import (
    AnnotatedFace,
    AnnotatedImage,
    AnnotationsError,
    Report,
    bucket_of,
    format_table,
    load_annotations,
    score_image,
)
from consumer.imaging.types import Box


def image(*faces: AnnotatedFace) -> AnnotatedImage:
    return AnnotatedImage(Path("x.jpg"), 200, 100, faces, "wider-val")


def test_a_face_counts_as_masked_from_sixty_percent_coverage() -> None:
    face = AnnotatedFace(Box(10, 10, 20, 40))
    covered = score_image(image(face), [Box(10, 10, 20, 24)], margin=0.0, detect_ms=1.0)  # 60 %
    short = score_image(image(face), [Box(10, 10, 20, 23)], margin=0.0, detect_ms=1.0)  # 57.5 %
    assert covered.masked == [(face, True)]
    assert short.masked == [(face, False)]
    grown = score_image(image(face), [Box(10, 14, 20, 20)], margin=0.2, detect_ms=1.0)  # grown to 20 x 28 + 4
    assert grown.masked == [(face, True)]


def test_invalid_faces_are_skipped_but_still_absorb_detections() -> None:
    invalid = AnnotatedFace(Box(100, 10, 30, 30), invalid=True)
    score = score_image(image(invalid), [Box(100, 10, 30, 30), Box(160, 60, 20, 20)], margin=0.0, detect_ms=1.0)
    assert score.masked == []
    assert score.unmatched_detections == 1
    assert score.detections == 2


def test_masks_are_clipped_at_the_border_and_nonface_pixels_counted() -> None:
    face = AnnotatedFace(Box(0, 0, 10, 10))
    score = score_image(image(face), [Box(-5, -5, 20, 20)], margin=0.0, detect_ms=1.0)
    assert score.masked == [(face, True)]
    assert score.nonface_pixels == 200 * 100 - 100
    assert score.nonface_pixels_masked == 15 * 15 - 100


def test_report_buckets_by_face_height_and_hard_list() -> None:
    assert [bucket_of(h) for h in (5, 16, 31, 32, 64, 127, 128, 900)] == [
        "<16",
        "16-32",
        "16-32",
        "32-64",
        "64-128",
        "64-128",
        ">128",
        ">128",
    ]
    small, big = AnnotatedFace(Box(0, 0, 10, 10), hard=True), AnnotatedFace(Box(50, 0, 80, 80))
    report = Report()
    report.add(score_image(image(small, big), [Box(50, 0, 80, 80)], margin=0.0, detect_ms=4.0))
    summary = report.summary()
    assert summary["masked_share"] == 0.5
    assert summary["masked_share_by_height"] == {"<16": 0.0, "16-32": None, "32-64": None, "64-128": 1.0, ">128": None}
    assert summary["hard_list_masked_share"] == 0.0
    assert summary["detect_ms_per_image"] == 4.0


def write_image(path: Path, width: int = 50, height: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(path.suffix, np.zeros((height, width, 3), np.uint8))[1].tobytes())


def test_annotations_file_format(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.jpg")
    entry = {
        "image": "a.jpg",
        "width": 50,
        "height": 40,
        "faces": [[1, 2, 3, 4], [5, 6, 7, 8]],
        "subset": "wider-val",
        "difficulty": {"invalid": [0, 1], "hard": [1, 0]},
    }
    other = {**entry, "subset": "other", "difficulty": {}}
    path = tmp_path / "annotations.jsonl"
    path.write_text(json.dumps(entry) + "\n" + json.dumps(other) + "\n")
    [wider] = load_annotations(path, "wider-val")
    assert wider.path == tmp_path / "images" / "a.jpg"
    assert wider.faces == (AnnotatedFace(Box(1, 2, 3, 4), hard=True), AnnotatedFace(Box(5, 6, 7, 8), invalid=True))
    assert len(load_annotations(path)) == 2


def test_a_users_annotations_need_only_the_image_and_its_faces(tmp_path: Path) -> None:
    """Without an images/ folder the images lie beside the file; a size left out is read from the image."""
    write_image(tmp_path / "mine.png", width=64, height=48)
    path = tmp_path / "annotations.jsonl"
    path.write_text(json.dumps({"image": "mine.png", "faces": [[1, 2, 30, 40]]}) + "\n\n")
    [mine] = load_annotations(path)
    assert (mine.path, mine.width, mine.height, mine.subset) == (tmp_path / "mine.png", 64, 48, "")
    assert mine.faces == (AnnotatedFace(Box(1, 2, 30, 40)),)
    assert load_annotations(path, "wider-val") == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "line 2: not JSON"),
        ("[1, 2]", "line 2: not a JSON object"),
        ('{"faces": []}', "line 2: no 'image' field"),
        ('{"image": "a.png"}', "line 2: no 'faces' field"),
        ('{"image": "a.png", "faces": [[1, 2, 3]]}', "line 2: a face is [x, y, w, h] in pixels, not [1, 2, 3]"),
        (
            '{"image": "a.png", "faces": [[1, 2, "w", 4]]}',
            'line 2: a face is [x, y, w, h] in pixels, not [1, 2, "w", 4]',
        ),
        (
            '{"image": "a.png", "faces": [[1, 2, 3, 4]], "difficulty": {"hard": [1, 0]}}',
            "line 2: difficulty.hard has 2 labels for 1 faces",
        ),
        ('{"image": "gone.png", "faces": []}', "line 2: no image at "),
        ('{"image": "text.png", "faces": []}', "line 2: the 4 bytes are not a JPEG, PNG, BMP or WebP image"),
    ],
)
def test_a_line_that_is_not_an_annotation_is_named(tmp_path: Path, line: str, reason: str) -> None:
    write_image(tmp_path / "a.png")
    (tmp_path / "text.png").write_text("text")
    path = tmp_path / "annotations.jsonl"
    path.write_text(json.dumps({"image": "a.png", "faces": []}) + "\n" + line + "\n")
    with pytest.raises(AnnotationsError, match="^" + re.escape(f"{path} {reason}")):
        load_annotations(path)


def test_the_table_keeps_cells_wider_than_the_names_apart() -> None:
    few, many = Report(), Report()
    many.detections, many.unmatched = 17994, 16
    table = format_table({"fast": few, "balanced": many, "thorough": many})
    row = next(line for line in table.splitlines() if line.startswith("detections matching no face"))
    assert row.split("face", 1)[1].split() == ["0", "of", "0", "16", "of", "17994", "16", "of", "17994"]
    assert "  16 of 17994  16 of 17994" in row
