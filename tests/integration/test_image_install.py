"""The container image without a Docker engine: the Dockerfile is linted with hadolint, and its
install steps run for real into a fresh folder, from which a worker then serves requests from the
real broker with its root filesystem read-only, as the image runs on Kubernetes.

The build stage's COPY lines say which files the install sees; its RUN line is
`sh ops/install_image.sh /app`, the script run here; the final stage keeps `.venv` and `models`
only, so everything else is deleted before the worker starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import MakeStack
from tests.integration.stack import free_port
from tests.support import BIN, REPO, SAMPLES

DOCKERFILE = REPO / "Dockerfile"
HADOLINT = BIN / "hadolint"
UV = REPO / ".cache" / "uv" / "bin" / "uv"


@dataclass(frozen=True)
class Stage:
    copies: list[tuple[list[str], str]]  # (sources, destination) of each COPY
    runs: list[str]
    env: dict[str, str]


def stages(dockerfile: str) -> list[Stage]:
    """The Dockerfile's stages with their COPY and RUN instructions (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    found: list[Stage] = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True) if line.strip() and not line.lstrip().startswith("#") else []
        if not words:
            continue
        instruction = words[0].upper()
        if instruction == "FROM":
            found.append(Stage([], [], {}))
        elif instruction == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            found[-1].copies.append((args[:-1], args[-1]))
        elif instruction == "RUN":
            found[-1].runs.append(" ".join(words[1:]))
        elif instruction == "ENV":
            found[-1].env.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
    return found


def hadolint(dockerfile: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", "--failure-threshold", "style", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (not findings), done.stderr
    return findings


def test_dockerfile_passes_hadolint_at_every_level() -> None:
    assert hadolint(DOCKERFILE.read_text()) == []


def test_hadolint_catches_an_unpinned_install_and_a_root_user() -> None:
    """The linter really runs its rules on this file: two regressions are reported."""
    broken = DOCKERFILE.read_text().replace('"uv==${UV_VERSION}"', "uv").replace("USER 10001:10001", "USER root")
    assert {finding["code"] for finding in hadolint(broken)} >= {"DL3013", "DL3002"}


def test_image_pins_the_uv_of_the_makefile() -> None:
    [dockerfile_pin] = re.findall(r"^ARG UV_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    [makefile_pin] = re.findall(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert dockerfile_pin == makefile_pin


def test_build_context_admits_every_file_the_build_copies() -> None:
    admitted = {line.strip().lstrip("!").rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    build = stages(DOCKERFILE.read_text())[0]
    sources = [source for sources, _ in build.copies for source in sources]
    assert sources
    assert [s for s in sources if s.rstrip("/") not in admitted] == []


def install_as_the_image_does(app: Path) -> None:
    """Copy what the build stage copies, run its RUN line, keep what the final stage keeps."""
    build, final = stages(DOCKERFILE.read_text())
    for sources, destination in build.copies:
        target = app / destination
        for source in sources:
            origin = REPO / source
            into = target / origin.name if destination.endswith("/") else target
            if origin.is_dir():
                shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)
    [install] = [run for run in build.runs if "install_image.sh" in run]
    assert install == "sh ops/install_image.sh /app"
    done = subprocess.run(
        ["sh", "ops/install_image.sh", str(app)],
        cwd=app,
        env={**os.environ, "UV": str(UV)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kept = {Path(sources[0]).relative_to("/app").as_posix() for sources, _ in final.copies}
    assert kept == {".venv", "models"}
    for entry in app.iterdir():
        if entry.name not in kept:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def read_only_root(app: Path, scratch: Path) -> list[str]:
    """`faceguard worker` from `app` in a mount namespace whose root is read-only but for a fresh
    tmpfs at `scratch` (Kubernetes: readOnlyRootFilesystem with an emptyDir on /tmp)."""
    script = (
        "mount --rbind / / && mount -o remount,bind,ro / && "
        f'mount -t tmpfs -o size=64m tmpfs {shlex.quote(str(scratch))} && exec "$0" worker'
    )
    return ["unshare", "--mount", "sh", "-c", script, str(app / ".venv" / "bin" / "faceguard")]


@pytest.mark.kafka
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for the read-only root")
def test_image_install_serves_requests_with_a_read_only_root(make_stack: MakeStack, tmp_path: Path) -> None:
    app = tmp_path / "app"
    install_as_the_image_does(app)
    faceguard = app / ".venv" / "bin" / "faceguard"
    listed = subprocess.run([str(app / ".venv" / "bin" / "python"), "-m", "pip", "--version"], capture_output=True)
    assert listed.returncode != 0, "the image's virtualenv carries no pip"

    stack = make_stack(partitions=1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    port = free_port()
    # The final stage's environment, with /app and /tmp where this test put them.
    image_env = stages(DOCKERFILE.read_text())[-1].env
    moved = {"/app": str(app), "/tmp": str(scratch), "$PATH": os.environ["PATH"]}
    env = {
        name: re.sub(r"/app\b|/tmp\b|\$PATH", lambda found: moved[found[0]], value) for name, value in image_env.items()
    }
    assert env["FACEGUARD_MODELS_DIR"] == str(app / "models")
    assert env["TMPDIR"] == str(scratch)
    env |= {
        "FACEGUARD_PROBE_PORT": str(port),
        "FACEGUARD_OUTPUT_STORE": "",  # the image has no writable folder to store into
        "HOME": "/nonexistent",  # the image's user has no home
    }
    worker = stack.start_worker_command(read_only_root(app, scratch), **env)
    [request_id] = stack.submit(SAMPLES / "astronaut.png")
    outputs = stack.outputs({request_id}, timeout_s=120)
    [metadata] = outputs.metadata[request_id]
    assert json.loads(metadata.value or b"{}")["total_count"] == 1

    ready = subprocess.run(
        [str(faceguard), "probe", "ready"], env={"FACEGUARD_PROBE_PORT": str(port)}, capture_output=True, text=True
    )
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert json.loads(ready.stdout)["status"] == "ok"

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    log = stack.worker_log()
    assert "Read-only file system" not in log
    assert [line for line in stack.worker_log_lines() if line.get("level") == "ERROR"] == []
    dead = subprocess.run(
        [str(faceguard), "probe", "live", "--timeout", "1"],
        env={"FACEGUARD_PROBE_PORT": str(port)},
        capture_output=True,
        text=True,
    )
    assert dead.returncode == 1
    assert "no answer" in dead.stdout
