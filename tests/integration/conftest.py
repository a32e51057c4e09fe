from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.image_server import ImageServer
from tests.integration.stack import Stack
from tests.support import REPO, SAMPLES, SHARED_DATA

MakeStack = Callable[..., Stack]


@pytest.fixture
def make_stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[MakeStack]:
    """Build isolated stacks (own topics and group); their workers are killed at the end."""
    stacks: list[Stack] = []

    def make(partitions: int = 3, default_preset: bool = False, **env: str) -> Stack:
        """Delivery tests run the `fast` detection preset unless `default_preset`: what they prove
        does not depend on detection, and the default preset costs ten times as much per image."""
        env = env if default_preset else {"FACEGUARD_PRESET": "fast", **env}
        stack = Stack(kafka_bootstrap, tmp_path, partitions, [SHARED_DATA, SAMPLES, tmp_path], env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.close()


SCRIPT = str(REPO / "ops" / "kafka_local.py")


def broker(command: str, data: Path) -> str:
    done = subprocess.run(
        [sys.executable, SCRIPT, command, "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test's own, so that stopping it disturbs no other test."""
    data = tmp_path / "broker"
    bootstrap = broker("start", data)
    yield bootstrap, data
    broker("stop", data)
