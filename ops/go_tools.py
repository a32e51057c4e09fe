#!/usr/bin/env python3
"""Go programs the tests use, built with `go install` from the Go module proxy into
`.cache/go/bin`, each at a pinned version (rebuilt only when the pin changes).

    python3 ops/go_tools.py install minio promtool

minio: the S3-compatible server of the object-storage tests (`ops/s3_local.py`).
promtool: checks and unit-tests the alert rules in `ops/monitoring/`.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOBIN = REPO / ".cache" / "go" / "bin"
TOOLS = {
    "minio": ("github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c"),  # master of 2026-02-12
    "promtool": ("github.com/prometheus/prometheus/cmd/promtool", "v0.316.0"),
}


class ToolError(RuntimeError):
    """A tool could not be built; the message says why."""


def install(name: str) -> Path:
    """The tool's binary, built once per pinned version."""
    package, version = TOOLS[name]
    binary, stamp = GOBIN / name, GOBIN / f"{name}.version"
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == version:
        return binary
    if shutil.which("go") is None:
        raise ToolError(f"Go is needed to build {name} (go install); install Go 1.24 or newer")
    GOBIN.mkdir(parents=True, exist_ok=True)
    print(f"go-tools: building {name} {version} with go install (a few minutes, once)", file=sys.stderr, flush=True)
    env = {**os.environ, "GOBIN": str(GOBIN), "CGO_ENABLED": "0"}
    built = subprocess.run(["go", "install", "-trimpath", f"{package}@{version}"], env=env, check=False)
    if built.returncode != 0 or not binary.exists():
        raise ToolError(f"go install {package}@{version} failed (exit {built.returncode})")
    stamp.write_text(version + "\n")
    return binary


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "install" or not set(argv[1:]) <= set(TOOLS):
        print(f"usage: go_tools.py install {' '.join(TOOLS)}", file=sys.stderr)
        return 2
    try:
        for name in argv[1:]:
            print(f"go-tools: {name} at {install(name)}", file=sys.stderr)
    except ToolError as exc:
        print(f"go-tools: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
