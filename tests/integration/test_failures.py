"""Failure classes and their actions on a real broker: retry tiers, the circuit breaker, slow sources."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from consumer.kafka.clients import read_snapshot
from tests.image_server import ImageServer
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES

pytestmark = pytest.mark.kafka

ASTRONAUT = (SAMPLES / "astronaut.png").read_bytes()
SLACK_S = 0.3  # timestamps come from two clocks (headers, server); allow this much


def headers_of(record: object) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}  # type: ignore[attr-defined]


def test_retries_wait_their_tier_without_holding_back_the_main_topic(
    make_stack: MakeStack, image_server: ImageServer
) -> None:
    stack = make_stack(partitions=1, FACEGUARD_RETRY_DELAYS_S="2,4")
    flaky = image_server.script("/flaky.png", ASTRONAUT, fail_first=2)
    down = image_server.script("/down.png", ASTRONAUT, fail_first=10**9)
    flaky_id, down_id = stack.submit(flaky, down)
    good_ids = stack.submit(SAMPLES / "chelsea.png", SAMPLES / "coffee.png", SAMPLES / "astronaut.png")
    stack.start_worker()

    stack.outputs(set(good_ids), timeout_s=60)
    good_done = time.time()
    outputs = stack.outputs({flaky_id, down_id}, timeout_s=60)

    # The good requests behind the failing ones were not held back by the retries' delays.
    hits = image_server.scripts["/flaky.png"].hits
    assert len(hits) == 3
    assert good_done < hits[-1]
    # Attempt 2 ran no sooner than tier 1's delay after attempt 1, attempt 3 no sooner than tier 2's.
    assert hits[1] - hits[0] >= 2 - SLACK_S
    assert hits[2] - hits[1] >= 4 - SLACK_S
    assert len(outputs.masked[flaky_id]) == 1
    assert len(outputs.metadata[flaky_id]) == 1

    # The source that always fails ends in the DLQ after the last tier, marked retryable.
    [dead] = outputs.dead_letters
    headers = headers_of(dead)
    assert dead.key == down_id.encode()
    assert headers["faceguard-error-class"] == "source_unavailable"
    assert headers["faceguard-attempts"] == "3"
    assert headers["faceguard-retryable"] == "true"
    assert headers["faceguard-original-topic"] == stack.settings.topic_requests
    assert len(image_server.scripts["/down.png"].hits) == 3

    # Each tier's records carry the attempt count, the first failure and the time before which not to run.
    for tier, topic in enumerate(stack.settings.topics.retries, start=1):
        records = list(read_snapshot(stack.settings.kafka_client_config(), topic))
        assert sorted(r.key or b"" for r in records) == sorted([flaky_id.encode(), down_id.encode()])
        for record in records:
            h = headers_of(record)
            assert h["faceguard-attempts"] == str(tier)
            assert h["faceguard-error-reason"].startswith("HTTP 503")
            assert "faceguard-first-failed-at" in h
            assert "faceguard-not-before" in h


def test_breaker_stops_a_burst_of_failures_and_recovers_once_the_cause_is_fixed(
    make_stack: MakeStack, image_server: ImageServer
) -> None:
    stack = make_stack(
        partitions=1,
        FACEGUARD_RETRY_DELAYS_S="",
        FACEGUARD_PROCESSING_THREADS="1",
        FACEGUARD_BREAKER_WINDOW="4",
        FACEGUARD_BREAKER_COOLDOWN_S="3",
    )
    urls = [image_server.script(f"/img-{i}.png", ASTRONAUT, fail_first=10**9) for i in range(24)]
    ids = stack.submit(*urls)  # the source answers 503 to every one of them
    stack.start_worker()

    stack.outputs(4, timeout_s=60)
    outputs = stack.settle(2.0)
    tripped = len(outputs.dead_letters)
    assert tripped < len(ids) / 2, "the breaker should have stopped the drain into the DLQ"
    assert "circuit breaker open" in stack.worker_log()

    for script in image_server.scripts.values():  # the cause is fixed: the source serves again
        script.fail_first = 0
    outputs = stack.outputs(set(ids), timeout_s=60)
    dead = {(r.key or b"").decode() for r in outputs.dead_letters}
    masked = set(outputs.metadata)
    assert dead | masked == set(ids)
    assert len(dead) <= tripped + 1, "at most one more failed probe after the source came back"
    assert "circuit breaker closed" in stack.worker_log()


def test_invalid_input_never_opens_the_breaker(make_stack: MakeStack, tmp_path: Path) -> None:
    # A producer's bad batch: 55 junk records ahead of one good request. Each goes to the DLQ at once;
    # the good one is not held back by a breaker cooling down (before: it opened 6 times, 60 s of waiting).
    stack = make_stack(partitions=1, FACEGUARD_BREAKER_WINDOW="4", FACEGUARD_BREAKER_COOLDOWN_S="30")
    junk = [b"not json", b"{}", b'{"request_id": "x", "image_ref": "gopher://a"}'] * 15
    junk += [
        json.dumps({"request_id": f"m{i}", "image_ref": (tmp_path / f"m{i}.png").as_uri()}).encode() for i in range(10)
    ]
    stack.produce_raw(junk)
    [good] = stack.submit(SAMPLES / "astronaut.png")
    started = time.monotonic()
    stack.start_worker()
    outputs = stack.outputs(len(junk) + 1, timeout_s=60)
    took = time.monotonic() - started
    assert good in outputs.metadata
    assert len(outputs.dead_letters) == len(junk)
    assert "circuit breaker open" not in stack.worker_log()
    assert took < 30, f"{took:.1f} s: the good request waited for a cooldown"


def test_a_fetch_slower_than_max_poll_interval_causes_no_rebalance(
    make_stack: MakeStack, image_server: ImageServer
) -> None:
    stack = make_stack(
        partitions=1,
        FACEGUARD_MAX_POLL_INTERVAL_MS="6000",
        FACEGUARD_SESSION_TIMEOUT_MS="6000",
        FACEGUARD_FETCH_TIMEOUT_S="30",
        FACEGUARD_FETCH_READ_TIMEOUT_S="20",
    )
    slow = image_server.script("/slow.png", ASTRONAUT, delay_s=10)
    [slow_id] = stack.submit(slow)
    stack.start_worker()
    outputs = stack.outputs({slow_id}, timeout_s=60)
    assert len(outputs.metadata[slow_id]) == 1
    assert not outputs.dead_letters
    log = stack.worker_log()
    messages = [str(line["message"]) for line in stack.worker_log_lines()]
    assert sum(m.startswith("assigned ") for m in messages) == 1, log
    assert "revoked" not in log
    assert "lost" not in log
    assert "maximum poll interval" not in log.lower()
    assert len(image_server.scripts["/slow.png"].hits) == 1
