#!/usr/bin/env python3
"""Go programs the tests use, built with `go install` from the Go module proxy into
`.cache/go/bin`, each at a pinned version (rebuilt only when the pin changes).

    python3 ops/go_tools.py install minio promtool helm kubeconform docker-compose

minio: the S3-compatible server of the object-storage tests (`ops/s3_local.py`).
promtool: checks and unit-tests the alert rules in `ops/monitoring/`.
helm: lints and renders the chart in `helm/faceguard`.
kubeconform: validates the rendered manifests against the schemas `ops/k8s_schemas.py` writes.
docker-compose: Docker Compose v2, which checks `docker-compose.yml` (`config` needs no Docker engine).
  Its go.mod carries exclude directives, which `go install pkg@version` refuses, so it is built
  as the main module from its source as the module proxy serves it (`go mod download`).

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOBIN = REPO / ".cache" / "go" / "bin"


@dataclass(frozen=True)
class Tool:
    module: str
    version: str
    package: str = ""  # inside the module; "" is its root
    as_main_module: bool = False  # build from the module's source (go.mod directives honoured)
    ldflags: str = ""

    @property
    def import_path(self) -> str:
        return f"{self.module}/{self.package}" if self.package else self.module


TOOLS = {
    "minio": Tool("github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c"),  # master of 2026-02-12
    "promtool": Tool("github.com/prometheus/prometheus", "v0.316.0", "cmd/promtool"),
    "helm": Tool("helm.sh/helm/v3", "v3.22.0", "cmd/helm"),
    "kubeconform": Tool("github.com/yannh/kubeconform", "v0.8.0", "cmd/kubeconform"),
    "docker-compose": Tool(
        "github.com/docker/compose/v2",
        "v2.40.3",
        "cmd",
        as_main_module=True,
        ldflags="-X github.com/docker/compose/v2/internal.Version=v2.40.3",
    ),
}


class ToolError(RuntimeError):
    """A tool could not be built; the message says why."""


def install(name: str) -> Path:
    """The tool's binary, built once per pinned version."""
    tool = TOOLS[name]
    binary, stamp = GOBIN / name, GOBIN / f"{name}.version"
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == tool.version:
        return binary
    if shutil.which("go") is None:
        raise ToolError(f"Go is needed to build {name} (go install); install Go 1.24 or newer")
    GOBIN.mkdir(parents=True, exist_ok=True)
    print(f"go-tools: building {name} {tool.version} (a few minutes, once)", file=sys.stderr, flush=True)
    env = {**os.environ, "GOBIN": str(GOBIN), "CGO_ENABLED": "0"}
    flags = ["-trimpath", *(["-ldflags", tool.ldflags] if tool.ldflags else [])]
    if tool.as_main_module:
        built = build_main_module(tool, binary, flags, env)
    else:
        built = subprocess.run(["go", "install", *flags, f"{tool.import_path}@{tool.version}"], env=env, check=False)
    if built.returncode != 0 or not binary.exists():
        raise ToolError(f"building {tool.import_path}@{tool.version} failed (exit {built.returncode})")
    stamp.write_text(tool.version + "\n")
    return binary


def build_main_module(
    tool: Tool, binary: Path, flags: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """`go build` inside a writable copy of the module's source from the module cache."""
    source = module_source(tool.module, tool.version, env)
    with tempfile.TemporaryDirectory(prefix="go-tools-") as scratch:
        work = Path(scratch) / "src"
        shutil.copytree(source, work)
        for path in [work, *work.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        package = f"./{tool.package}" if tool.package else "."
        return subprocess.run(["go", "build", *flags, "-o", str(binary), package], cwd=work, env=env, check=False)


def module_source(module: str, version: str, env: dict[str, str] | None = None) -> Path:
    """The module's files as the proxy serves them, downloaded once into Go's module cache (read-only)."""
    if shutil.which("go") is None:
        raise ToolError(f"Go is needed to download {module} (go mod download); install Go 1.24 or newer")
    where = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], env=env, capture_output=True, check=False
    )
    if where.returncode != 0:
        raise ToolError(f"go mod download {module}@{version} failed: {where.stderr.decode(errors='replace')}")
    return Path(json.loads(where.stdout)["Dir"])


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
