"""Faceguard's event contracts: what goes on each topic.

| topic (default name)      | key        | value                          | headers                 |
|---------------------------|------------|--------------------------------|-------------------------|
| faceguard.requests        | request id | `ImageRequest` as JSON         | (any; ignored)          |
| faceguard.masked-images   | request id | the masked image's bytes       | `MaskedImageHeaders`    |
| faceguard.metadata        | request id | `FaceMetadataEvent` as JSON    | content-type            |
| faceguard.requests.retry-N| as consumed| the request, unchanged         | `RetryHeaders`          |
| faceguard.dlq             | as consumed| the request (never image bytes)| `DeadLetterHeaders`     |

The JSON Schema files beside this module are generated from these models by
`python -m schemas.export`; a test fails when they drift.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

ALLOWED_SCHEMES = ("file", "http", "https", "s3")

RequestId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
        description="Caller-chosen id, unique per image; the record key on every topic.",
    ),
]


class Contract(BaseModel):
    """Base of every contract: immutable, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class MaskMethod(StrEnum):
    """How a face region is made unrecognisable."""

    BLUR = "blur"
    PIXELATE = "pixelate"
    FILL = "fill"


class MaskShape(StrEnum):
    """The shape masked inside the grown face box."""

    BOX = "box"
    ELLIPSE = "ellipse"


# A blur's Gaussian sigma as a share of its scale (`kernel_px`; `strength` times the region's long side). Part of
# the contract because it says how strong a given strength is; chosen by measurement (consumer/imaging/mask.py).
BLUR_SIGMA = 0.4


class MaskOptions(Contract):
    """Per-request masking options; omitted fields take the worker's defaults."""

    method: MaskMethod | None = Field(None, description="blur (default), pixelate or fill.")
    strength: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description=(
            "Share of the masked region's long side used as the blur's scale (its Gaussian's sigma is "
            f"{BLUR_SIGMA:g} of that), or as twice the pixel block side when pixelating (1.0: two blocks "
            "across); ignored by fill. 1.0 is the "
            "strongest. Unless the worker allows requests to weaken masks, a value below the "
            "worker's default is raised to it."
        ),
    )
    margin: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the face box added on every side before masking. Unless the worker allows "
            "requests to weaken masks, a value below the worker's default is raised to it."
        ),
    )
    shape: MaskShape | None = Field(
        None,
        description=(
            "box (default) or ellipse inside the grown box. An ellipse leaves the corners, and more "
            "of the head, visible; unless the worker allows requests to weaken masks, it is used only "
            "when it is the worker's default."
        ),
    )
    min_face_probability: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "The verifier's probability from which a candidate is masked as a face (the preset's own when "
            "omitted). Lower masks more: unless the worker allows requests to weaken masks, a value above "
            "the preset's is lowered to it."
        ),
    )


class ImageRequest(Contract):
    """A request to anonymize one image, published to the requests topic keyed by `request_id`."""

    schema_version: Literal[1] = 1
    request_id: RequestId
    image_ref: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "s3://bucket/key, http:// or https:// URL (public addresses unless the worker allows more), "
            "or file:// under the worker's allowed roots."
        ),
    )
    mask: MaskOptions | None = Field(None, description="Per-request masking options.")
    attributes: dict[str, JsonValue] = Field(
        default_factory=dict, description="Free-form caller data, copied to the metadata event unchanged."
    )

    @field_validator("image_ref")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if not sep or scheme.lower() not in ALLOWED_SCHEMES:
            raise ValueError(f"image_ref must be a {', '.join(s + '://' for s in ALLOWED_SCHEMES)} URL")
        return value


class AppliedMask(Contract):
    """The mask actually applied to one face."""

    method: MaskMethod
    strength: float = Field(description="Strength used (see MaskOptions.strength); 1.0 for fill.")
    shape: MaskShape = Field(MaskShape.BOX, description="Shape masked inside the region.")
    region: tuple[int, int, int, int] = Field(
        description="Masked rectangle [x, y, w, h]: the face box grown by the margin, clipped to the image."
    )
    kernel_px: int = Field(
        description=(
            f"Blur scale in pixels (the Gaussian's sigma is {BLUR_SIGMA:g} of it) or pixel block side (pixelate); "
            "0 for fill."
        )
    )


class Face(Contract):
    """One detected and masked face."""

    bbox: tuple[int, int, int, int] = Field(
        description="[x, y, w, h] in pixels of the upright image (EXIF orientation applied), top-left origin."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="The detector's score.")
    verification: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="The verifier's probability that this is a face; null when the preset runs no verifier.",
    )
    mask: AppliedMask


class ImageInfo(Contract):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    format: str = Field(
        description="jpeg, png, bmp or webp: the output's; the input's unless Accept or `anonymize -o` names another."
    )
    content_type: str


class ModelInfo(Contract):
    name: str = Field(description="Detector model, e.g. blazeface-full-range-sparse.")
    version: str = Field(description="Runtime that ran it and the model file's sha256 prefix.")
    min_confidence: float = Field(description="The lowest score any pass accepted.")
    preset: str = Field(description="Detection preset that ran: fast, balanced or thorough.")
    passes: list[str] = Field(
        description="The preset's passes (model, whole image or tile scale, score threshold), then its second look."
    )


class StageTimings(Contract):
    """Milliseconds spent in each pipeline stage for this request."""

    fetch_ms: float
    decode_ms: float
    detect_ms: float
    mask_ms: float
    encode_ms: float


class SourceRecord(Contract):
    """Where the request was consumed from."""

    topic: str
    partition: int
    offset: int


class StoredImage(Contract):
    """A masked image written to the output store instead of going inline (claim check).

    It is the value of the masked-images record (content type
    `application/vnd.faceguard.stored-image+json`) and the metadata event's `output`.
    """

    uri: str = Field(description="s3://bucket/key or file:///path; the key is <request id>/<sha256>.<ext>.")
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str = Field(description="The image's type: image/jpeg, image/png, image/bmp or image/webp.")


STORED_IMAGE_CONTENT_TYPE = "application/vnd.faceguard.stored-image+json"


class FaceMetadataEvent(Contract):
    """The audit record for one processed request, on the metadata topic keyed by `request_id`."""

    schema_version: Literal[1] = 1
    request_id: RequestId
    source_ref: str
    image: ImageInfo
    faces: list[Face]
    total_count: int = Field(ge=0)
    processing_time_ms: float = Field(ge=0.0, description="Fetch to encoded output, in milliseconds.")
    timings: StageTimings
    model: ModelInfo
    input_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    output_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    output_bytes: int = Field(ge=0)
    output: StoredImage | None = Field(
        None, description="Where the masked image was stored; absent when it went inline in the masked-images record."
    )
    attributes: dict[str, JsonValue] = Field(default_factory=dict)
    source: SourceRecord | None = Field(None, description="The request record; absent outside Kafka.")
    worker_id: str
    processed_at: datetime


class MaskedImageHeaders(Contract):
    """Headers of a masked-images record (header name: field name with `_` as `-`)."""

    content_type: str = Field(
        alias="content-type",
        description=(
            "image/jpeg, image/png, image/bmp or image/webp when the image is the value; "
            "application/vnd.faceguard.stored-image+json when the value is a StoredImage."
        ),
    )
    faceguard_request_id: str = Field(alias="faceguard-request-id")
    faceguard_face_count: int = Field(alias="faceguard-face-count", ge=0)
    faceguard_schema_version: Literal["1"] = Field("1", alias="faceguard-schema-version")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ErrorClass(StrEnum):
    """Why a record was dead-lettered, and so what an operator can do about it."""

    INVALID_REQUEST = "invalid_request"
    UNSUPPORTED_REFERENCE = "unsupported_reference"
    FORBIDDEN_ADDRESS = "forbidden_address"
    SOURCE_NOT_FOUND = "source_not_found"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_IMAGE = "unsupported_image"
    IMAGE_TOO_LARGE = "image_too_large"
    SOURCE_UNAVAILABLE = "source_unavailable"
    OUTPUT_STORE_UNAVAILABLE = "output_store_unavailable"
    PROCESSING_BUG = "processing_bug"  # our code failed on this record, attempt after attempt


class FailureHeaders(Contract):
    """Headers shared by retry and dead-letter records: where the request came from and why it failed."""

    faceguard_error_class: ErrorClass = Field(alias="faceguard-error-class")
    faceguard_error_reason: str = Field(alias="faceguard-error-reason", description="Readable reason, no image data.")
    faceguard_original_topic: str = Field(
        alias="faceguard-original-topic", description="Where the request was first published."
    )
    faceguard_original_partition: int = Field(alias="faceguard-original-partition")
    faceguard_original_offset: int = Field(alias="faceguard-original-offset")
    faceguard_original_timestamp_ms: int = Field(alias="faceguard-original-timestamp-ms")
    faceguard_request_id: str | None = Field(None, alias="faceguard-request-id")
    faceguard_attempts: int = Field(alias="faceguard-attempts", ge=1, description="Failed attempts so far.")
    faceguard_first_failed_at: datetime = Field(alias="faceguard-first-failed-at")
    faceguard_redrive_count: int = Field(
        0, alias="faceguard-redrive-count", ge=0, description="How often the request was redriven from the DLQ."
    )
    faceguard_worker_id: str = Field(alias="faceguard-worker-id")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RetryHeaders(FailureHeaders):
    """Headers of a retry-topic record; its value is the request, unchanged."""

    faceguard_not_before: datetime = Field(
        alias="faceguard-not-before", description="The record must not be processed before this time."
    )


class DeadLetterHeaders(FailureHeaders):
    """Headers of a dead-letter record. Its value is the request, never fetched image bytes."""

    faceguard_retryable: Literal["true", "false"] = Field(
        alias="faceguard-retryable", description="true when the failure may pass on a later attempt (redrive)."
    )
    faceguard_original_key: str | None = Field(
        None,
        alias="faceguard-original-key",
        description=(
            "The request record's key (also the DLQ record's key; a key over 1 KiB is shortened here, and the DLQ "
            "record is keyed by its sha256)."
        ),
    )
    faceguard_consumer_group: str = Field(alias="faceguard-consumer-group")
    faceguard_failed_at: datetime = Field(alias="faceguard-failed-at")
    faceguard_value_dropped: str | None = Field(
        None,
        alias="faceguard-value-dropped",
        description="Set when the consumed value was binary (possibly an image) and was left out of the DLQ.",
    )
    faceguard_value_truncated: str | None = Field(
        None,
        alias="faceguard-value-truncated",
        description="Set when the consumed value was over the request size limit: how much of it the DLQ keeps.",
    )


CONTRACTS: dict[str, type[BaseModel]] = {
    "image_request": ImageRequest,
    "face_metadata_event": FaceMetadataEvent,
    "masked_image_headers": MaskedImageHeaders,
    "stored_image": StoredImage,
    "retry_headers": RetryHeaders,
    "dead_letter_headers": DeadLetterHeaders,
}

# CloudEvents (spec 1.0, Kafka binding, binary content mode) on every record Faceguard publishes: the event
# types, each versioned (a change a consumer of v1 cannot read is a new type, v2), and the URI naming the
# contract of each event's data in `ce_dataschema` (docs/events.md).
CLOUDEVENT_TYPES: dict[str, str] = {
    "image_masked": "dev.faceguard.image.masked.v1",  # the masked image itself (its content type says which)
    "image_stored": "dev.faceguard.image.stored.v1",  # a StoredImage: where the claim check put the image
    "faces_detected": "dev.faceguard.faces.detected.v1",  # a FaceMetadataEvent
    "request_retried": "dev.faceguard.request.retried.v1",  # the ImageRequest again, on a retry tier
    "request_dead_lettered": "dev.faceguard.request.dead_lettered.v1",  # the ImageRequest, given up on
}
# The contract whose JSON Schema describes each event type's data (None: an image).
CLOUDEVENT_DATA: dict[str, str | None] = {
    "image_masked": None,
    "image_stored": "stored_image",
    "faces_detected": "face_metadata_event",
    "request_retried": "image_request",
    "request_dead_lettered": "image_request",
}


def dataschema_uri(contract: str) -> str:
    """The `ce_dataschema` naming a contract's JSON Schema (the file schemas/<contract>.schema.json)."""
    return f"urn:faceguard:schema:{contract}:v1"
