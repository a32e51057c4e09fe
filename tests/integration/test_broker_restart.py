"""The broker goes away mid-stream and comes back: workers reconnect on their own, nothing is lost or doubled."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import Stack
from tests.support import REPO, SAMPLES, SHARED_DATA

pytestmark = pytest.mark.kafka

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


def test_broker_restart_mid_stream_loses_and_repeats_nothing(own_broker: tuple[str, Path], tmp_path: Path) -> None:
    bootstrap, data = own_broker
    stack = Stack(bootstrap, tmp_path, 3, [SHARED_DATA, SAMPLES], {"FACEGUARD_PRESET": "fast"})
    try:
        photos = sorted((SHARED_DATA / "large").glob("*.jpg"))[:12] * 4
        ids = stack.submit(*photos)
        worker = stack.start_worker()
        stack.outputs(5, timeout_s=120)
        broker("stop", data)
        assert len(stack.settle(0.2).finished()) < len(ids), "the broker was meant to stop midway"
        time.sleep(3.0)
        assert worker.poll() is None, "the worker must ride out the outage"
        assert broker("start", data) == bootstrap
        outputs = stack.outputs(set(ids), timeout_s=240)
        outputs = stack.settle(3.0)
        assert worker.poll() is None, stack.worker_log()
        assert not outputs.dead_letters
        for request_id in ids:
            assert len(outputs.masked[request_id]) == 1, (request_id, stack.worker_log())
            assert len(outputs.metadata[request_id]) == 1, request_id
    finally:
        stack.close()
