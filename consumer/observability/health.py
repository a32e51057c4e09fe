"""Liveness, readiness, and the HTTP endpoint serving them with the metrics.

    /healthz   live: the poll loop turned recently and no processing thread has been
               on one record past `stuck_after_s` (a slow image is not stuck: the
               deadline is far above the slowest image's time)
    /readyz    ready: models loaded, broker reachable, circuit breaker not open
               (partitions assigned, or waiting for an assignment, is reported)
    /metrics   Prometheus text format

Each probe answers 200 or 503 with a short JSON body saying why.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumer.errors import SetupError
from consumer.observability.metrics import Metrics


@dataclass
class Health:
    """State the consumer and processing threads report; read by the probes (any thread)."""

    loop_deadline_s: float
    stuck_after_s: float
    models_loaded: bool = False
    broker_reachable: bool = False
    breaker_open: bool = False
    assigned_partitions: int = 0
    _loop_turned: float = field(default_factory=time.monotonic)
    _busy_since: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def loop_turned(self) -> None:
        self._loop_turned = time.monotonic()

    def record_started(self, thread: str) -> None:
        with self._lock:
            self._busy_since[thread] = time.monotonic()

    def record_done(self, thread: str) -> None:
        with self._lock:
            self._busy_since.pop(thread, None)

    def liveness(self) -> tuple[bool, dict[str, object]]:
        now = time.monotonic()
        with self._lock:
            stuck = {t: round(now - s, 1) for t, s in self._busy_since.items() if now - s > self.stuck_after_s}
        since_turn = now - self._loop_turned
        live = since_turn <= self.loop_deadline_s and not stuck
        return live, {"poll_loop_seconds_ago": round(since_turn, 1), "stuck_threads": stuck}

    def readiness(self) -> tuple[bool, dict[str, object]]:
        ready = self.models_loaded and self.broker_reachable and not self.breaker_open
        return ready, {
            "models_loaded": self.models_loaded,
            "broker_reachable": self.broker_reachable,
            "circuit_breaker": "open" if self.breaker_open else "closed",
            "partitions": self.assigned_partitions or "waiting for assignment",
        }


class ProbeCheck(StrEnum):
    """Which probe to ask: each is served at its own path."""

    LIVE = "live"
    READY = "ready"

    @property
    def path(self) -> str:
        return "/healthz" if self is ProbeCheck.LIVE else "/readyz"


@dataclass(frozen=True)
class ProbeAnswer:
    ok: bool
    body: str
    answered: bool = True  # False: nothing answered on the port (or probes are off), so `body` is ours


def ask_probe(port: int, check: ProbeCheck, timeout_s: float, host: str = "127.0.0.1") -> ProbeAnswer:
    """What a worker's probe server on this host says: the container health check without curl."""
    if port == 0:
        return ProbeAnswer(False, '{"status": "failing", "probes": "off (FACEGUARD_PROBE_PORT=0)"}', answered=False)
    url = f"http://{host}:{port}{check.path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return ProbeAnswer(True, response.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:  # 503: the body says why
        return ProbeAnswer(False, exc.read().decode(errors="replace"))
    except OSError as exc:
        body = json.dumps({"status": "failing", "probes": f"no answer on port {port}: {exc}"})
        return ProbeAnswer(False, body, answered=False)


class ProbeServer:
    """Serves /healthz, /readyz and /metrics on a daemon thread. Close it when done."""

    def __init__(self, port: int, health: Health, metrics: Metrics, host: str = "0.0.0.0") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    ok, why = health.liveness() if path == "/healthz" else health.readiness()
                    body = json.dumps({"status": "ok" if ok else "failing", **why}).encode()
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b'{"error": "try /healthz, /readyz or /metrics"}', "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise SetupError(f"cannot serve probes on port {port}: {exc.strerror} (FACEGUARD_PROBE_PORT)") from exc
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="probes", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
