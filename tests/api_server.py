"""`faceguard serve` run as a user runs it, on a free loopback port, for the HTTP API's tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support import BIN

LISTENING = re.compile(r"serving the HTTP API on (http://[0-9.]+:\d+)")
START_TIMEOUT_S = 60.0


class ApiServer:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, url: str) -> None:
        self.process = process
        self.log = log
        self.url = url

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout_s)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(workdir: Path, **env: str) -> ApiServer:
    """Start `faceguard serve` with `env` (FACEGUARD_* settings) on a free port; returns once /health is 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"serve-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [str(BIN / "faceguard"), "serve"],
        env={**os.environ, "FACEGUARD_HTTP_PORT": "0", "FACEGUARD_LOG_FORMAT": "text", **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"faceguard serve exited {process.returncode}: {log.read_text()}")
        if match := LISTENING.search(log.read_text(errors="replace")):
            url = match.group(1)
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return ApiServer(process, log, url)
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"faceguard serve did not start in {START_TIMEOUT_S} s: {log.read_text()}")


@contextmanager
def running_server(workdir: Path, **env: str) -> Iterator[ApiServer]:
    server = start_server(workdir, **env)
    try:
        yield server
    finally:
        try:
            server.stop(signal.SIGTERM, timeout_s=30)
        except subprocess.TimeoutExpired:
            server.stop(signal.SIGKILL)
