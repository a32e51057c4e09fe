"""The broker goes away mid-stream and comes back: workers reconnect on their own, nothing is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from consumer.kafka.clients import read_snapshot
from tests.integration.conftest import broker
from tests.integration.stack import Stack
from tests.support import SAMPLES, SHARED_DATA, annotated_images, wait_for

pytestmark = pytest.mark.kafka

DRAIN_S = 25  # FACEGUARD_DRAIN_TIMEOUT_S


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


def test_broker_killed_under_two_workers_every_worker_recovers_and_no_transaction_stays_open(
    own_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, data = own_broker
    stack = Stack(bootstrap, tmp_path, 4, [SHARED_DATA, SAMPLES], {"FACEGUARD_PRESET": "fast"})
    try:
        photos = [image.path for image in annotated_images()]
        ids = stack.submit(*photos[:300])
        workers = [stack.start_worker("w0"), stack.start_worker("w1")]
        stack.outputs(30, timeout_s=120)
        os.kill(int((data / "broker.pid").read_text()), signal.SIGKILL)  # lost, not shut down
        time.sleep(18)
        assert [w.poll() for w in workers] == [None, None], "the workers must ride out the outage"
        assert broker("start", data) == bootstrap
        outputs = stack.outputs(set(ids), timeout_s=240)
        outputs = stack.settle(3.0)
        assert [w.poll() for w in workers] == [None, None], stack.worker_log(0)[-3000:] + stack.worker_log(1)[-3000:]
        assert not outputs.dead_letters
        twice = [i for i in ids if len(outputs.masked[i]) != 1 or len(outputs.metadata[i]) != 1]
        assert not twice, f"{len(twice)} requests missing or published twice"
        wait_for(lambda: not open_transactions(stack), 30, "every output partition's transactions to be closed")
    finally:
        stack.close()


def open_transactions(stack: Stack) -> dict[tuple[str, int], tuple[int, int]]:
    """Output partitions whose last stable offset lags their high watermark: a transaction still open there,
    which holds read_committed readers back."""
    admin = AdminClient(stack.settings.kafka_client_config())
    partitions = [
        TopicPartition(topic, p)
        for topic in stack.settings.topics.outputs
        for p in admin.list_topics(topic, timeout=10).topics[topic].partitions
    ]

    def latest(level: IsolationLevel) -> dict[tuple[str, int], int]:
        spec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets({tp: spec for tp in partitions}, isolation_level=level)
        return {(tp.topic, tp.partition): f.result(10).offset for tp, f in futures.items()}

    stable, high = latest(IsolationLevel.READ_COMMITTED), latest(IsolationLevel.READ_UNCOMMITTED)
    return {key: (stable[key], high[key]) for key in high if stable[key] != high[key]}


def test_sigterm_ends_a_worker_within_the_drain_deadline_while_its_broker_is_gone(
    own_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, data = own_broker
    env = {"FACEGUARD_PRESET": "fast", "FACEGUARD_SESSION_TIMEOUT_MS": "6000"}  # the stopped member times out soon
    stack = Stack(bootstrap, tmp_path, 2, [SHARED_DATA, SAMPLES], env)
    try:
        ids = stack.submit(*[image.path for image in annotated_images()][:200])
        worker = stack.start_worker()
        stack.outputs(20, timeout_s=120)
        os.kill(int((data / "broker.pid").read_text()), signal.SIGKILL)
        time.sleep(2)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=DRAIN_S + 20)
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGUSR1)  # every thread's stack into its log
            time.sleep(1)
            pytest.fail(f"still running {DRAIN_S + 20} s after SIGTERM: {stack.worker_log()[-6000:]}")
        took = time.monotonic() - started
        assert took < DRAIN_S + 10, f"{took:.1f} s to stop: {stack.worker_log()[-2000:]}"
        assert broker("start", data) == bootstrap
        # Whatever it could not commit is processed again by the next worker: nothing is lost or doubled. Counted
        # on a fresh read of the output topics: a reader that lived through the outage may read records again.
        stack.start_worker("w0")  # restarted under its name, as a pod is: it aborts its predecessor's transaction
        stack.outputs(set(ids), timeout_s=240)
        client = stack.settings.kafka_client_config()
        for topic in (stack.settings.topic_masked, stack.settings.topic_metadata):
            published = Counter((r.key or b"").decode() for r in read_snapshot(client, topic))
            assert {i: published[i] for i in ids if published[i] != 1} == {}, topic
    finally:
        stack.close()
