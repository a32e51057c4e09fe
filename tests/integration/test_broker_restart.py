"""The broker goes away mid-stream and comes back: workers reconnect on their own, nothing is lost or doubled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import broker
from tests.integration.stack import Stack
from tests.support import SAMPLES, SHARED_DATA

pytestmark = pytest.mark.kafka


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
