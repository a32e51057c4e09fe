"""Merging detections from overlapping tiles and several passes into one face each."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from consumer.imaging.types import Detection


def suppress_overlaps(detections: Iterable[Detection], max_iou: float) -> list[Detection]:
    """Non-maximum suppression: best score first, dropping any detection that overlaps a
    kept one by more than `max_iou` (intersection over union); each kept one counts what it
    dropped in its `support`. Returns best first."""
    kept: list[Detection] = []
    support: list[int] = []
    for detection in sorted(detections, key=lambda d: d.score, reverse=True):
        overlapping = [i for i, other in enumerate(kept) if detection.box.iou(other.box) > max_iou]
        if overlapping:
            support[overlapping[0]] += detection.support
        else:
            kept.append(detection)
            support.append(detection.support)
    return [dataclasses.replace(d, support=n) for d, n in zip(kept, support, strict=True)]


def drop_nested(detections: list[Detection], inside: float) -> list[Detection]:
    """`detections` without those lying mostly within a larger one (at least `inside` of their area): an eye or
    half a face found as a face of its own inside the face. The larger box's mask covers it anyway. Keeps the
    order."""
    by_area = sorted(detections, key=lambda d: d.box.w * d.box.h, reverse=True)
    nested = set()
    for index, small in enumerate(by_area):
        area = small.box.w * small.box.h
        if any(small.box.intersection_area(big.box) >= inside * area for big in by_area[:index]):
            nested.add(id(small))
    return [d for d in detections if id(d) not in nested]
