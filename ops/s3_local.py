#!/usr/bin/env python3
"""A local S3-compatible server for the tests and the demo: MinIO, built from source.

    python3 ops/s3_local.py install                 # go install the pinned MinIO (cached)
    python3 ops/s3_local.py start --data DIR [--port N]
    python3 ops/s3_local.py stop --data DIR

`start` prints the endpoint URL on stdout (everything else goes to stderr). The
credentials are `faceguard` / `faceguard-secret` unless S3_LOCAL_USER and
S3_LOCAL_PASSWORD say otherwise.

MinIO is the S3-compatible store most self-hosted platforms run, and a real
server: signatures, checksums, error codes and streaming are MinIO's own, not a
mock's. It is built with `go install` from the Go module proxy into
`.cache/go/bin` (about 3 minutes on 2 cores, once); the version is pinned in
`ops/go_tools.py`.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import go_tools
from kafka_local import free_port

REPO = Path(__file__).resolve().parent.parent
USER = os.environ.get("S3_LOCAL_USER", "faceguard")
PASSWORD = os.environ.get("S3_LOCAL_PASSWORD", "faceguard-secret")


class ServerError(RuntimeError):
    """The server could not be installed, started or stopped; the message says why."""


def log(message: str) -> None:
    print(f"s3-local: {message}", file=sys.stderr, flush=True)


def install() -> Path:
    """The MinIO binary, built once per pinned version (`ops/go_tools.py`)."""
    try:
        return go_tools.install("minio")
    except go_tools.ToolError as exc:
        raise ServerError(str(exc)) from exc


def start(data: Path, port: int, timeout: float) -> str:
    binary = install()
    data.mkdir(parents=True, exist_ok=True)
    pid_file = data / "minio.pid"
    if pid_file.exists():
        raise ServerError(f"a server may already run for {data} (pid file {pid_file}); stop it first")
    port = port or free_port()
    console = free_port()
    env = {**os.environ, "MINIO_ROOT_USER": USER, "MINIO_ROOT_PASSWORD": PASSWORD, "MINIO_BROWSER": "off"}
    command = [str(binary), "server", "--quiet", "--address", f"127.0.0.1:{port}"]
    command += ["--console-address", f"127.0.0.1:{console}", str(data / "store")]
    with (data / "minio.log").open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(process.pid))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise ServerError(f"MinIO exited with {process.returncode}; see {data / 'minio.log'}")
        if ready(endpoint):
            log(f"MinIO ready at {endpoint} (data {data})")
            return endpoint
        time.sleep(0.2)
    stop(data, 10.0)
    raise ServerError(f"MinIO was not ready within {timeout:g}s; see {data / 'minio.log'}")


def ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/minio/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(data: Path, timeout: float) -> None:
    pid_file = data / "minio.pid"
    if not pid_file.exists():
        log(f"no server runs for {data}")
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "stop"])
    parser.add_argument("--data", type=Path, default=REPO / ".cache" / "s3")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            log(f"MinIO at {install()}")
        elif args.command == "start":
            print(start(args.data.resolve(), args.port, args.timeout))
        else:
            stop(args.data.resolve(), args.timeout)
    except ServerError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
