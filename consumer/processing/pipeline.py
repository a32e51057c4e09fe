"""The anonymization pipeline: bytes in, masked bytes and face metadata out.

Composes the stages (decode -> detect -> mask -> encode) with timings. The Kafka
worker and the `anonymize` command run this same code; fetching is done by the
caller, which passes its time in.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from consumer.detection.scan import ScanDetector
from consumer.errors import ImageTooLarge
from consumer.imaging.decode import decode_inspected, inspect_image
from consumer.imaging.encode import EncodeQuality, encode_image
from consumer.imaging.mask import MaskPolicy, mask_faces, planned_masks
from consumer.imaging.pixel_budget import PixelBudget
from consumer.imaging.preview import draw_detections
from consumer.imaging.profile import read_profile
from consumer.imaging.types import Detection, ImageFormat
from consumer.sources.url_redaction import without_credentials
from schemas import (
    AppliedMask,
    Face,
    FaceMetadataEvent,
    ImageInfo,
    ImageRequest,
    MaskOptions,
    ModelInfo,
    SourceRecord,
    StageTimings,
)


@dataclass(frozen=True)
class PipelineOptions:
    """What the pipeline needs to know: the mask policy, output quality and the size limits."""

    masks: MaskPolicy
    quality: EncodeQuality
    max_image_pixels: int  # larger inputs are refused from their header, before decoding
    max_image_bytes: int  # larger outputs are refused: they would not fit where they go
    max_pixels_in_flight: int  # the budget of an anonymizer given none to share


@dataclass(frozen=True)
class FoundFaces:
    """The faces in an image and the masks that would hide them (`Anonymizer.find`): nothing masked."""

    format: ImageFormat  # of the output, for a masked image
    width: int
    height: int
    faces: list[Face]
    timings: StageTimings
    input_sha256: str

    @property
    def processing_time_ms(self) -> float:
        t = self.timings
        return t.fetch_ms + t.decode_ms + t.detect_ms + t.mask_ms + t.encode_ms


@dataclass(frozen=True, kw_only=True)
class AnonymizedImage(FoundFaces):
    """A masked image and what was done to it."""

    data: bytes
    output_sha256: str


class Anonymizer:
    """Runs the pipeline with one detector; not thread-safe (one per thread, like the detector).

    Anonymizers of one worker share a `PixelBudget`: each holds an image's pixels of it
    from decoding to encoding. Without one, an anonymizer has a budget of its own.
    """

    def __init__(self, detector: ScanDetector, options: PipelineOptions, budget: PixelBudget | None = None) -> None:
        self.detector = detector
        self._budget = budget or PixelBudget(options.max_pixels_in_flight)
        self._masks = options.masks
        self._quality = options.quality
        self._max_pixels = options.max_image_pixels
        self._max_output_bytes = options.max_image_bytes

    def preview(
        self, data: bytes, options: MaskOptions | None, output_format: ImageFormat | None = None
    ) -> tuple[bytes, ImageFormat]:
        """Image `data` with every candidate drawn instead of masked (`consumer/imaging/preview.py`): kept faces
        green, candidates the verifier rejected red; encoded as `output_format` (default: the input's).
        Raises NotAnImage or ImageTooLarge."""
        inspected = inspect_image(data, self._max_pixels)
        with self._budget.hold(inspected.pixels):
            image = decode_inspected(data, inspected)
            threshold = self._masks.min_face_probability(options, self.detector.min_probability)
            draw_detections(image.pixels, self.detector.review(image.pixels, threshold))
            output_format = output_format or image.format
            profile = read_profile(data, inspected.format)
            return encode_image(image.pixels, output_format, self._quality, profile), output_format

    def find(self, data: bytes, options: MaskOptions | None) -> FoundFaces:
        """The faces in image `data` and the masks `anonymize` would apply, without masking or encoding.
        Raises NotAnImage, UnsupportedImage or ImageTooLarge."""
        inspected = inspect_image(data, self._max_pixels)
        with self._budget.hold(inspected.pixels):
            clock = Stopwatch()
            image = decode_inspected(data, inspected)
            decode_ms = clock.lap()
            threshold = self._masks.min_face_probability(options, self.detector.min_probability)
            detections = self.detector.detect(image.pixels, threshold)
            detect_ms = clock.lap()
            width, height = image.width, image.height
            del image
        planned = planned_masks(detections, self._masks.resolve(options), width, height)
        return FoundFaces(
            format=inspected.format,
            width=width,
            height=height,
            faces=faces_of(detections, planned),
            timings=StageTimings(
                fetch_ms=0.0, decode_ms=round(decode_ms, 3), detect_ms=round(detect_ms, 3), mask_ms=0.0, encode_ms=0.0
            ),
            input_sha256=hashlib.sha256(data).hexdigest(),
        )

    def anonymize(
        self,
        data: bytes,
        options: MaskOptions | None,
        fetch_ms: float = 0.0,
        output_format: ImageFormat | None = None,
    ) -> AnonymizedImage:
        """Mask every face found in image `data`, encoded as `output_format` (default: the input's).

        Raises NotAnImage, UnsupportedImage or ImageTooLarge (input) and ImageTooLarge when the output
        would not fit in a record.
        """
        inspected = inspect_image(data, self._max_pixels)
        with self._budget.hold(inspected.pixels):
            clock = Stopwatch()  # time waiting for the budget is not a stage's
            image = decode_inspected(data, inspected)
            decode_ms = clock.lap()
            threshold = self._masks.min_face_probability(options, self.detector.min_probability)
            detections = self.detector.detect(image.pixels, threshold)
            detect_ms = clock.lap()
            pixels = image.pixels  # masked in place: the unmasked pixels are not needed again
            applied = mask_faces(pixels, detections, self._masks.resolve(options))
            mask_ms = clock.lap()
            output_format = output_format or image.format
            profile = read_profile(data, inspected.format)
            output = encode_image(pixels, output_format, self._quality, profile)
            encode_ms = clock.lap()
            width, height = image.width, image.height  # upright: EXIF orientation may swap the header's
            del image, pixels  # the decoded pixels are freed before the budget is given back
        if len(output) > self._max_output_bytes:
            raise ImageTooLarge(f"the masked image has {len(output)} bytes, over the limit of {self._max_output_bytes}")
        return AnonymizedImage(
            data=output,
            format=output_format,
            width=width,
            height=height,
            faces=faces_of(detections, applied),
            timings=StageTimings(
                fetch_ms=round(fetch_ms, 3),
                decode_ms=round(decode_ms, 3),
                detect_ms=round(detect_ms, 3),
                mask_ms=round(mask_ms, 3),
                encode_ms=round(encode_ms, 3),
            ),
            input_sha256=hashlib.sha256(data).hexdigest(),
            output_sha256=hashlib.sha256(output).hexdigest(),
        )


def faces_of(detections: list[Detection], masks: list[AppliedMask]) -> list[Face]:
    """The metadata of each detection and its mask."""
    return [
        Face(
            bbox=d.box.as_tuple(),
            confidence=round(d.score, 4),
            verification=None if d.verification is None else round(d.verification, 4),
            mask=m,
        )
        for d, m in zip(detections, masks, strict=True)
    ]


def metadata_event(
    request: ImageRequest, result: AnonymizedImage, model: ModelInfo, worker_id: str, source: SourceRecord | None
) -> FaceMetadataEvent:
    """The audit record for `request`, processed into `result`."""
    return FaceMetadataEvent(
        request_id=request.request_id,
        source_ref=without_credentials(request.image_ref),
        image=ImageInfo(
            width=result.width,
            height=result.height,
            format=result.format.value,
            content_type=result.format.content_type,
        ),
        faces=result.faces,
        total_count=len(result.faces),
        processing_time_ms=round(result.processing_time_ms, 3),
        timings=result.timings,
        model=model,
        input_sha256=result.input_sha256,
        output_sha256=result.output_sha256,
        output_bytes=len(result.data),
        attributes=request.attributes,
        source=source,
        worker_id=worker_id,
        processed_at=datetime.now(UTC),
    )


class Stopwatch:
    """Milliseconds between successive laps."""

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._last = (now - self._last) * 1000.0, now
        return elapsed
