"""The FastAPI application of `faceguard serve`: the original service's routes on the worker's pipeline.

    GET  /health        200 {"status": "ok", "model": ...} once the models are loaded
    GET  /healthz       live; /readyz ready (models loaded, not draining); /metrics Prometheus
    POST /process       the masked image (X-Faces-Count, X-Request-Id, X-Processing-Time-Ms), or its JSON
    POST /detect        the JSON without masking or encoding
    POST /v1/requests   an ImageRequest published to the requests topic (when the bridge is on)

Handlers stay thin: the body is read by `body`, the representation chosen by
`negotiation`, the work run on the bounded `pool`, and every error leaves as a
problem document (`problems`) from one handler.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consumer.api.auth import TokenVerifier
from consumer.api.body import Upload, read_limited, read_upload
from consumer.api.bridge import Bridge
from consumer.api.negotiation import Wanted, wanted
from consumer.api.pool import AtCapacity, Bench, DeadlinePassed, RequestPool
from consumer.api.problems import Problem, problem_of, problem_response
from consumer.detection.strategy import Preset
from consumer.errors import FaceguardError
from consumer.observability.metrics import HttpMetrics, Metrics
from consumer.processing.pipeline import AnonymizedImage, FoundFaces
from schemas import Face, ModelInfo

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a client's X-Request-Id we echo; others get a new one


@dataclass(frozen=True)
class ApiOptions:
    """What the routes need to know."""

    preset: Preset  # the server's; a request may ask for a more thorough one
    requests_may_weaken: bool  # and for a less thorough one only when this is set
    max_body_bytes: int
    deadline_s: float
    retry_after_s: int


@dataclass
class ApiParts:
    """What the application is built from (`service.py` builds them from the settings)."""

    options: ApiOptions
    pool: RequestPool
    model: ModelInfo
    metrics: Metrics
    registry: CollectorRegistry
    version: str
    verifier: TokenVerifier | None = None
    bridge: Bridge | None = None
    draining: bool = False


def create_app(parts: ApiParts) -> FastAPI:
    """The application serving `parts`."""
    app = declare_app(parts.version, auth=bearer(parts.verifier))
    app.state.parts = parts
    http_metrics = HttpMetrics(parts.registry)
    http_metrics.queued.set_function(lambda: parts.pool.state.queued)
    http_metrics.busy_threads.set_function(lambda: parts.pool.state.busy)
    add_problem_handlers(app, http_metrics)
    app.add_middleware(RouteMetrics, metrics=http_metrics)
    return app


def parts_of(request: Request) -> ApiParts:
    parts: ApiParts = request.app.state.parts
    return parts


def declare_app(version: str, auth: Callable[[Request], Awaitable[None]] | None = None) -> FastAPI:
    """The routes, reading what they serve from `app.state.parts`; alone, what the OpenAPI document shows."""
    app = FastAPI(
        title="Faceguard",
        version=version,
        summary="Masks every face in an image: the HTTP door onto the worker's pipeline.",
    )
    authenticated = [] if auth is None else [Depends(auth)]

    @app.get("/health", tags=["operations"])
    def health(request: Request) -> dict[str, object]:
        """Ok once the models are loaded: what the server runs."""
        parts = parts_of(request)
        return {
            "status": "ok",
            "model": f"{parts.model.name} ({parts.options.preset.value})",
            "preset": parts.options.preset.value,
            "model_version": parts.model.version,
            "version": parts.version,
            "threads": parts.pool.threads,
        }

    @app.get("/healthz", tags=["operations"])
    def live(request: Request) -> dict[str, object]:
        """Live: the server answers."""
        return {"status": "ok", "threads": parts_of(request).pool.threads}

    @app.get("/readyz", tags=["operations"])
    def ready(request: Request) -> Response:
        """Ready: models loaded and not draining (503 once a stop signal arrived)."""
        parts = parts_of(request)
        if parts.draining:
            return JSONResponse({"status": "failing", "draining": True}, 503)
        return JSONResponse({"status": "ok", "models_loaded": True, "queued": parts.pool.state.queued})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus text format."""
        return Response(generate_latest(parts_of(request).registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/process", tags=["images"], dependencies=authenticated, openapi_extra=IMAGE_BODY, responses=PROCESS)
    async def process(request: Request) -> Response:
        """Mask every face: the masked image, or with `Accept: application/json` what was found and masked."""
        parts = parts_of(request)
        want = wanted(request.headers.get("accept"))
        upload = await read_upload(request, parts.options.max_body_bytes)
        preset = preset_for(upload, parts.options)
        result = await run(
            parts, lambda bench: bench.anonymizer(preset).anonymize(upload.data, upload.mask, 0.0, want.format)
        )
        parts.metrics.anonymized(result, len(upload.data))
        return process_response(result, want, request_id(request))

    @app.post("/detect", tags=["images"], dependencies=authenticated, openapi_extra=IMAGE_BODY, responses=DETECT)
    async def detect(request: Request) -> Response:
        """The faces an image has and the masks that would hide them, without masking or encoding."""
        parts = parts_of(request)
        upload = await read_upload(request, parts.options.max_body_bytes)
        preset = preset_for(upload, parts.options)
        found = await run(parts, lambda bench: bench.anonymizer(preset).find(upload.data, upload.mask))
        rid = request_id(request)
        return JSONResponse(detect_json(found, rid), headers=answer_headers(rid, len(found.faces), found))

    @app.post(
        "/v1/requests",
        tags=["images"],
        dependencies=authenticated,
        status_code=202,
        openapi_extra=REQUEST_BODY,
        responses=BRIDGE,
    )
    async def enqueue(request: Request) -> Response:
        """Publish an ImageRequest to the requests topic (FACEGUARD_HTTP_BRIDGE=true); the outputs follow on the
        output topics."""
        bridge = parts_of(request).bridge
        if bridge is None:
            raise Problem(404, "bridge_off", "Not found", "POST /v1/requests is off (FACEGUARD_HTTP_BRIDGE=true)")
        image_request = bridge.parse(await read_limited(request, bridge.limits.max_value_bytes))
        await bridge.publish(image_request)
        return JSONResponse(
            {"request_id": image_request.request_id, "topic": bridge.topic},
            202,
            headers={"X-Request-Id": image_request.request_id},
        )

    return app


async def run(parts: ApiParts, work: Callable[[Bench], Any]) -> Any:
    """`work` on a processing thread, translating the pool's refusals into problems."""
    retry = {"Retry-After": str(parts.options.retry_after_s)}
    try:
        return await parts.pool.run(work, parts.options.deadline_s)
    except AtCapacity:
        raise Problem(
            503, "at_capacity", "At capacity", "every processing thread is busy and the queue is full", retry
        ) from None
    except DeadlinePassed:
        raise Problem(
            503, "deadline", "Deadline passed", f"not answered within {parts.options.deadline_s:g} s", retry
        ) from None


def preset_for(upload: Upload, options: ApiOptions) -> Preset:
    """The preset a request runs: its own when at least as thorough as the server's (or weaker ones allowed),
    else the server's, as a request's weaker mask options are raised to the defaults."""
    asked = upload.preset
    if asked is None or not (options.requests_may_weaken or asked.at_least(options.preset)):
        return options.preset
    return asked


def request_id(request: Request) -> str:
    sent = request.headers.get("x-request-id", "")
    return sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def answer_headers(rid: str, faces: int, result: FoundFaces) -> dict[str, str]:
    total = result.processing_time_ms  # decode to encode: the API fetches nothing
    return {"X-Faces-Count": str(faces), "X-Request-Id": rid, "X-Processing-Time-Ms": f"{total:.1f}"}


def process_response(result: AnonymizedImage, want: Wanted, rid: str) -> Response:
    headers = answer_headers(rid, len(result.faces), result)
    if want.json:
        return JSONResponse(process_json(result, rid), headers=headers)
    return Response(result.data, media_type=result.format.content_type, headers=headers)


def face_json(face: Face) -> dict[str, object]:
    """A face as the original service answered it (bbox, confidence, blur_radius), with our richer fields."""
    return {
        "bbox": list(face.bbox),
        "confidence": face.confidence,
        "blur_radius": face.mask.kernel_px // 2,
        "verification": face.verification,
        "mask": face.mask.model_dump(mode="json"),
    }


def common_json(result: FoundFaces, rid: str, image: dict[str, object] | None = None) -> dict[str, object]:
    """The JSON both routes answer with; `image` adds to the image's description."""
    return {
        "request_id": rid,
        "faces": [face_json(face) for face in result.faces],
        "total_count": len(result.faces),
        "processing_time_ms": round(result.processing_time_ms, 3),
        "image": {"width": result.width, "height": result.height, "format": result.format.value, **(image or {})},
        "timings": result.timings.model_dump(mode="json"),
        "input_sha256": result.input_sha256,
    }


def process_json(result: AnonymizedImage, rid: str) -> dict[str, object]:
    body = common_json(result, rid, {"content_type": result.format.content_type})
    return {**body, "output_sha256": result.output_sha256, "output_bytes": len(result.data)}


def detect_json(found: FoundFaces, rid: str) -> dict[str, object]:
    return common_json(found, rid)


def bearer(verifier: TokenVerifier | None) -> Callable[[Request], Awaitable[None]]:
    """The dependency that checks a request's bearer token (nothing when auth is off)."""

    async def check(request: Request) -> None:
        if verifier is not None:
            verifier.verify(request.headers.get("authorization"))

    return check


def add_problem_handlers(app: FastAPI, metrics: HttpMetrics) -> None:
    """Every error leaves as a problem document; 503s are counted by reason."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem | FaceguardError)  # the two types this handler is registered for
        problem = exc if isinstance(exc, Problem) else problem_of(exc)
        if problem.status == 503 and problem.reason in ("at_capacity", "deadline"):
            metrics.refused.labels(problem.reason).inc()
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        problem = Problem(exc.status_code, title.lower().replace(" ", "_"), title, str(exc.detail))
        return problem_response(problem, request.url.path)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        return problem_response(Problem(400, "invalid_request", "Invalid request", str(exc)), request.url.path)

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("bug answering %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(problem_of(FaceguardError()), request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(FaceguardError, on_problem)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(Exception, on_bug)


class RouteMetrics:
    """Counts every answer by route template, method and status, and times it (pure ASGI: no body copies)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        answered = False

        async def observe(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start" and not answered:
                answered, status = True, int(message["status"])
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observe)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()


MEDIA = {"schema": {"type": "string", "format": "binary"}}
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image: the multipart field `image` (JPEG, PNG, BMP or WebP), or the whole body with an "
        "image/* content type. Options (method, strength, margin, shape, min_face_probability, preset) as query "
        "parameters or form fields; a request can make masking stronger, never weaker.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "method": {"type": "string", "enum": ["blur", "pixelate", "fill"]},
                        "strength": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "margin": {"type": "number", "minimum": 0, "maximum": 1},
                        "shape": {"type": "string", "enum": ["box", "ellipse"]},
                        "min_face_probability": {"type": "number", "minimum": 0, "maximum": 1},
                        "preset": {"type": "string", "enum": [p.value for p in Preset]},
                    },
                }
            },
            "image/*": MEDIA,
        },
    }
}
PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not an image, corrupt, or invalid options", **PROBLEM},
    401: {"description": "Missing, invalid or expired bearer token (auth on)", **PROBLEM},
    403: {"description": "The token lacks the required scope", **PROBLEM},
    413: {"description": "Over the byte or pixel limit", **PROBLEM},
    415: {"description": "Unsupported media or image type", **PROBLEM},
    503: {"description": "At capacity or past the deadline; see Retry-After", **PROBLEM},
}
PROCESS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The masked image (the input's format unless Accept names another), or with Accept: "
        "application/json the faces found and masked. Headers X-Faces-Count, X-Request-Id, X-Processing-Time-Ms.",
        "content": {"image/*": MEDIA, "application/json": {"schema": {"type": "object"}}},
    },
    406: {"description": "Accept names nothing this route answers", **PROBLEM},
    **ERRORS,
}
DETECT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The faces found, nothing masked",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    **ERRORS,
}
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An ImageRequest, as on the requests topic (schemas/image_request.schema.json).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["request_id", "image_ref"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "image_ref": {"type": "string", "description": "file://, http(s):// or s3:// reference"},
                        "mask": {"type": "object"},
                        "attributes": {"type": "object"},
                    },
                }
            }
        },
    }
}
BRIDGE: dict[int | str, dict[str, Any]] = {
    202: {"description": "Published to the requests topic; the outputs follow on the output topics"},
    400: ERRORS[400],
    401: ERRORS[401],
    404: {"description": "The bridge is off", **PROBLEM},
    503: {"description": "The broker did not acknowledge the request", **PROBLEM},
}
