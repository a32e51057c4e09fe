"""Faceguard's event contracts (pydantic v2) and their exported JSON Schema files."""

from schemas.events import (
    CONTRACTS,
    AppliedMask,
    DeadLetterHeaders,
    ErrorClass,
    Face,
    FaceMetadataEvent,
    ImageInfo,
    ImageRequest,
    MaskedImageHeaders,
    MaskMethod,
    MaskOptions,
    MaskShape,
    ModelInfo,
    RetryHeaders,
    SourceRecord,
    StageTimings,
)

__all__ = [
    "CONTRACTS",
    "AppliedMask",
    "DeadLetterHeaders",
    "ErrorClass",
    "Face",
    "FaceMetadataEvent",
    "ImageInfo",
    "ImageRequest",
    "MaskMethod",
    "MaskOptions",
    "MaskShape",
    "MaskedImageHeaders",
    "ModelInfo",
    "RetryHeaders",
    "SourceRecord",
    "StageTimings",
]
