"""Stopping a worker midway and starting it again loses nothing and repeats nothing committed."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas import STORED_IMAGE_CONTENT_TYPE, StoredImage
from tests.integration.conftest import MakeStack
from tests.integration.stack import Outputs, Stack
from tests.support import SHARED_DATA

pytestmark = pytest.mark.kafka

PARTITIONS = 3
# Small commit batches; a killed worker's partitions move on after 6 s rather than 45.
SMALL_BATCHES = {"FACEGUARD_BATCH_SIZE": "3", "FACEGUARD_SESSION_TIMEOUT_MS": "6000"}


def large_photos() -> list[str]:
    """Twelve of the large benchmark photos (2 to 24 MP), each three times: about 5 s of work for
    one worker, so a signal sent after the first outputs reliably lands midway (12 alone can
    finish in under 2 s once the files are cached)."""
    return [str(p) for p in sorted((SHARED_DATA / "large").glob("*.jpg"))[:12]] * 3


def committed_offsets(stack: Stack) -> dict[int, int]:
    """The group's committed offset per partition of the requests topic (-1001 when none): the last stable ones.
    Read uncommitted, so that the offset fetch does not ask for stable offsets (KIP-447's require_stable, which
    librdkafka sets under read_committed): a killed worker's open transaction holds offsets the broker keeps
    pending until the transaction is aborted, and a fetch requiring stable offsets waits for that (seen timing
    out after 10 s on a loaded machine). Without it the broker answers with the offsets last committed."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.kafka_bootstrap_servers,
            "group.id": stack.settings.group_id,
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        wanted = [TopicPartition(stack.settings.topic_requests, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10)}
    finally:
        consumer.close()


def source_offsets(outputs: Outputs, request_id: str) -> list[tuple[int, int]]:
    sources = [json.loads(r.value or b"")["source"] for r in outputs.metadata[request_id]]
    return [(s["partition"], s["offset"]) for s in sources]


def assert_every_stored_image_was_written(outputs: Outputs) -> int:
    """Each masked record that refers to a stored image (claim check) names a file holding it.
    Returns how many did."""
    stored = 0
    for records in outputs.masked.values():
        for record in records:
            if dict(record.headers)["content-type"] != STORED_IMAGE_CONTENT_TYPE.encode():
                continue
            image = StoredImage.model_validate_json(record.value or b"")
            data = Path(urlsplit(image.uri).path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == image.sha256
            stored += 1
    return stored


def interrupted_then_restarted(
    stack: Stack, interrupt: signal.Signals
) -> tuple[list[str], int, dict[int, int], Outputs]:
    """Submit the photos, send `interrupt` to the worker after three finish, restart it, and read
    everything. Returns the request ids, the first worker's exit code, the offsets committed
    when it ended, and all outputs."""
    ids = stack.submit(*large_photos())
    first = stack.start_worker("w0", **SMALL_BATCHES)
    stack.outputs(3)
    first.send_signal(interrupt)
    exit_code = first.wait(timeout=120)
    committed = committed_offsets(stack)
    assert len(stack.settle(1.0).finished()) < len(ids), "the worker was meant to stop midway"
    stack.start_worker("w0", **SMALL_BATCHES)
    stack.outputs(set(ids), timeout_s=180)
    return ids, exit_code, committed, stack.settle(3.0)


def test_sigterm_midway_then_restart_processes_each_request_exactly_once(make_stack: MakeStack) -> None:
    stack = make_stack(partitions=PARTITIONS)
    ids, exit_code, _, outputs = interrupted_then_restarted(stack, signal.SIGTERM)
    assert exit_code == 0, stack.worker_log(0)
    for request_id in ids:
        assert len(outputs.masked[request_id]) == 1, (request_id, stack.worker_log(0))
        assert len(outputs.metadata[request_id]) == 1, request_id
    assert not outputs.dead_letters
    assert assert_every_stored_image_was_written(outputs) > 0  # the large photos outgrow a record


def test_sigkill_midway_then_restart_repeats_only_uncommitted_requests(make_stack: MakeStack) -> None:
    stack = make_stack(partitions=PARTITIONS)
    ids, exit_code, committed, outputs = interrupted_then_restarted(stack, signal.SIGKILL)
    assert exit_code == -signal.SIGKILL
    for request_id in ids:
        assert len(outputs.masked[request_id]) >= 1, request_id
        assert len(outputs.metadata[request_id]) == len(outputs.masked[request_id]), request_id
        sources = source_offsets(outputs, request_id)
        assert len(set(sources)) == 1, "one request record, one source"
        partition, offset = sources[0]
        if offset < committed[partition]:
            # Committed before the kill: must not have been processed again.
            assert len(sources) == 1, (request_id, sources, committed)
    assert any(offset >= 0 for offset in committed.values()), "some work was committed before the kill"
    assert assert_every_stored_image_was_written(outputs) > 0
