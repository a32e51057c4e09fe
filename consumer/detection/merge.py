"""Merging detections from overlapping tiles and several passes into one face each."""

from __future__ import annotations

from collections.abc import Iterable

from consumer.imaging.types import Detection


def suppress_overlaps(detections: Iterable[Detection], max_iou: float) -> list[Detection]:
    """Non-maximum suppression: best score first, dropping any detection that overlaps a
    kept one by more than `max_iou` (intersection over union). Returns best first."""
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(detection.box.iou(other.box) <= max_iou for other in kept):
            kept.append(detection)
    return kept
