"""`faceguard serve`: the composition root of the HTTP API. Settings in; a uvicorn server out, drained on
SIGTERM.

Uvicorn (with FastAPI on Starlette) serves it: an ASGI server whose event loop
only reads bodies and writes answers while the pipeline runs on the processing
threads (`pool.py`), so a slow image never holds up the probes or a 503. On
SIGTERM the server stops accepting connections, `/readyz` turns 503, requests
under way finish (up to FACEGUARD_HTTP_DRAIN_TIMEOUT_S), then the threads stop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from consumer import package_version
from consumer.api.app import ApiOptions, ApiParts, create_app
from consumer.api.auth import AuthOptions, TokenVerifier
from consumer.api.bridge import Bridge
from consumer.api.pool import Bench, RequestPool
from consumer.config import HttpAuth, Settings
from consumer.detection.scan import ScanDetector
from consumer.detection.strategy import PRESETS, Preset
from consumer.engine.service import build_info
from consumer.errors import SetupError
from consumer.imaging.pixel_budget import PixelBudget
from consumer.observability.metrics import Metrics
from consumer.processing.pipeline import Anonymizer

log = logging.getLogger(__name__)
QUEUE_PER_THREAD = 2  # requests that may wait per processing thread by default


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback with auth off, unless the settings say so explicitly."""
    if settings.http_auth is HttpAuth.OFF and not settings.http_allow_public and not is_loopback(settings.http_host):
        raise SetupError(
            f"refusing to serve on {settings.http_host} with auth off: set FACEGUARD_HTTP_AUTH=jwt, or "
            "FACEGUARD_HTTP_ALLOW_PUBLIC=true when a gateway in front checks every caller"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_verifier(settings: Settings) -> TokenVerifier | None:
    if settings.http_auth is HttpAuth.OFF:
        return None
    if not settings.jwt_audience:
        raise SetupError("FACEGUARD_HTTP_AUTH=jwt needs FACEGUARD_JWT_AUDIENCE: tokens must name this service")
    secret = settings.jwt_hs256_secret
    return TokenVerifier(
        AuthOptions(
            audience=settings.jwt_audience,
            hs256_secret=None if secret is None else secret.get_secret_value(),
            jwks_file=settings.jwt_jwks_file,
            issuer=settings.jwt_issuer,
            scope=settings.jwt_scope,
        )
    )


def request_pool(settings: Settings) -> RequestPool:
    """The processing threads, each with its own anonymizer per preset, sharing one pixel budget."""
    threads = settings.http_threads or settings.processing_threads
    depth = QUEUE_PER_THREAD * threads if settings.http_queue is None else settings.http_queue
    budget = PixelBudget(settings.max_pixels_in_flight)
    options = settings.pipeline_options

    def build(preset: Preset) -> Anonymizer:
        return Anonymizer(ScanDetector(PRESETS[preset], settings.models_dir), options, budget)

    pool = RequestPool(threads, depth, lambda: Bench(build, settings.preset))
    pool.wait_ready()
    return pool


class DrainingServer(uvicorn.Server):
    """Uvicorn's server, turning `/readyz` to 503 the moment a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, parts: ApiParts) -> None:
        super().__init__(config)
        self.parts = parts

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.parts.draining = True
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT start the drain; unlike uvicorn's own, the signal is not raised again after it,
        so the threads are stopped and a drained server exits 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(settings: Settings) -> None:
    """Serve the API until SIGTERM or SIGINT. Raises SetupError when it cannot start as configured."""
    check_exposure(settings)
    verifier = token_verifier(settings)
    listener = listen(settings.http_host, settings.http_port)
    pool = request_pool(settings)
    bridge = None
    try:
        if settings.http_bridge:
            limits = settings.output_options.limits
            client, producer = settings.kafka_client_config(), settings.producer_options
            bridge = Bridge(client, producer, settings.topics.requests, limits, settings.http_deadline_s)
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        metrics.build.info(build_info(settings))
        options = ApiOptions(
            preset=settings.preset,
            requests_may_weaken=settings.mask_requests_may_weaken,
            max_body_bytes=settings.max_image_bytes,
            deadline_s=settings.http_deadline_s,
            retry_after_s=settings.http_retry_after_s,
        )
        assert pool.model is not None  # wait_ready returned: every thread loaded its models
        parts = ApiParts(options, pool, pool.model, metrics, registry, package_version(), verifier, bridge)
        config = uvicorn.Config(
            create_app(parts),
            log_config=None,  # our formatter (consumer.observability.logs) writes uvicorn's lines too
            access_log=False,  # the metrics count requests; a log line per image says nothing more
            timeout_graceful_shutdown=int(settings.http_drain_timeout_s),
            lifespan="off",
        )
        host, port = listener.getsockname()[:2]
        log.info(
            "serving the HTTP API on http://%s:%d with %d processing threads, preset %s, auth %s",
            host,
            port,
            pool.threads,
            settings.preset.value,
            settings.http_auth.value,
        )
        DrainingServer(config, parts).run(sockets=[listener])
    finally:
        pool.close()
        if bridge is not None:
            bridge.close()
        listener.close()
    log.info("stopped serving")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: any free port, logged). Raises SetupError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise SetupError(f"cannot listen on {host}:{port}: {exc.strerror} (FACEGUARD_HTTP_HOST, _PORT)") from exc
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener
