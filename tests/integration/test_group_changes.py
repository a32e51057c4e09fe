"""What a consumer group meets in production, on the real broker, with exactly-once workers: members joining
and leaving a busy group, a member frozen past its session timeout. Nothing is lost or published twice, no
worker exits unexpectedly, and the requests topic's partitions are shared evenly after every change."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.integration.conftest import MakeStack
from tests.integration.stack import Outputs, Stack
from tests.support import annotated_images, wait_for

pytestmark = pytest.mark.kafka

PARTITIONS = 6
SESSION_S = 6
# The default preset on one thread per worker: each change lands while requests are still flowing.
BUSY = {"FACEGUARD_SESSION_TIMEOUT_MS": str(SESSION_S * 1000), "FACEGUARD_PROCESSING_THREADS": "1"}
ASSIGNMENT = re.compile(r"^(assigned|revoked|lost) (.*?)(?: \(\d+ uncommitted.*)?$")


def requests_partitions(stack: Stack, index: int) -> set[int]:
    """The requests-topic partitions worker `index` holds now, replayed from its log."""
    held: set[int] = set()
    topic = stack.settings.topic_requests
    for line in stack.worker_log_lines(index):
        match = ASSIGNMENT.match(str(line.get("message", "")))
        if not match:
            continue
        named = {int(p) for p in re.findall(rf"{re.escape(topic)}\[([\d,]+)\]", match.group(2)) for p in p.split(",")}
        held = held | named if match.group(1) == "assigned" else held - named
    return held


def wait_even_and_moving(stack: Stack, live: list[int], done_before: int, what: str) -> Outputs:
    """Within twice the session timeout: every live worker holds its even share of the requests partitions,
    and requests finish again."""
    deadline = time.monotonic() + 2 * SESSION_S + 5
    while True:
        shares = {i: requests_partitions(stack, i) for i in live}
        outputs = stack.settle(0.5)
        even = sorted(len(s) for s in shares.values()) == sorted(
            PARTITIONS // len(live) + (k < PARTITIONS % len(live)) for k in range(len(live))
        )
        covered = set().union(*shares.values()) == set(range(PARTITIONS))
        if even and covered and len(outputs.finished()) > done_before:
            return outputs
        assert time.monotonic() < deadline, f"{what}: shares {shares}, finished {len(outputs.finished())}"


def test_members_joining_and_leaving_a_busy_group_lose_and_duplicate_nothing(make_stack: MakeStack) -> None:
    stack = make_stack(partitions=PARTITIONS, default_preset=True, **BUSY)
    photos = [image.path for image in annotated_images()]
    ids = stack.submit(*(photos * 2)[:600])
    workers = [stack.start_worker("w0")]
    outputs = stack.outputs(40, timeout_s=120)
    for count in (2, 3):  # scale out, as the autoscaler does on lag
        workers.append(stack.start_worker(f"w{count - 1}"))
        outputs = wait_even_and_moving(stack, list(range(count)), len(outputs.finished()), f"{count} workers")
    workers[2].send_signal(signal.SIGTERM)  # scale in: the newest pod goes
    assert workers[2].wait(timeout=40) == 0, stack.worker_log(2)
    outputs = wait_even_and_moving(stack, [0, 1], len(outputs.finished()), "back to 2 workers")

    outputs = stack.outputs(set(ids), timeout_s=300)
    outputs = stack.settle(3.0)
    assert [w.poll() for w in workers[:2]] == [None, None], "a worker exited unexpectedly"
    missing = [i for i in ids if not outputs.masked[i] or not outputs.metadata[i]]
    twice = [i for i in ids if len(outputs.masked[i]) > 1 or len(outputs.metadata[i]) > 1]
    assert (len(missing), len(twice), len(outputs.dead_letters)) == (0, 0, 0)


def test_a_member_frozen_past_its_session_rejoins_or_stops_cleanly(make_stack: MakeStack) -> None:
    stack = make_stack(partitions=PARTITIONS, default_preset=True, **BUSY)
    photos = [image.path for image in annotated_images()]
    ids = stack.submit(*(photos * 2)[:400])
    frozen, other = stack.start_worker("w0"), stack.start_worker("w1")
    outputs = stack.outputs(40, timeout_s=120)

    frozen.send_signal(signal.SIGSTOP)  # a long GC pause or a frozen node
    time.sleep(2 * SESSION_S)  # the group evicts it and gives its partitions to the other worker
    outputs = wait_even_and_moving(stack, [1], len(outputs.finished()), "the frozen member evicted")
    frozen.send_signal(signal.SIGCONT)
    outputs = wait_even_and_moving(stack, [0, 1], len(outputs.finished()), "the frozen member back")

    outputs = stack.outputs(set(ids), timeout_s=300)
    outputs = stack.settle(3.0)
    missing = [i for i in ids if not outputs.masked[i] or not outputs.metadata[i]]
    twice = [i for i in ids if len(outputs.masked[i]) > 1 or len(outputs.metadata[i]) > 1]
    assert (len(missing), len(twice), len(outputs.dead_letters)) == (0, 0, 0)
    assert [frozen.poll(), other.poll()] == [None, None], stack.worker_log(0)[-3000:]

    started = time.monotonic()
    frozen.send_signal(signal.SIGTERM)  # and it still stops cleanly, within the drain deadline
    assert frozen.wait(timeout=40) == 0
    assert time.monotonic() - started < 30


def test_a_static_member_restarted_within_its_session_takes_its_partitions_back_without_a_rebalance(
    make_stack: MakeStack,
) -> None:
    """A rolling restart with FACEGUARD_STATIC_MEMBERSHIP: the other member is never revoked."""
    stack = make_stack(
        partitions=PARTITIONS,
        FACEGUARD_STATIC_MEMBERSHIP="true",
        FACEGUARD_SESSION_TIMEOUT_MS="30000",
        FACEGUARD_PROCESSING_THREADS="1",
    )
    photos = [image.path for image in annotated_images()]
    ids = stack.submit(*photos[:60])
    stack.start_worker("w0")
    restarted = stack.start_worker("w1")
    wait_even_and_moving(stack, [0, 1], 0, "two static members")
    held = requests_partitions(stack, 1)

    def changes() -> list[str]:
        return [str(line["message"]) for line in stack.worker_log_lines(0) if ASSIGNMENT.match(str(line["message"]))]

    before = changes()  # the first may have been all partitions, before the second member joined
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(30) == 0
    stack.start_worker("w1")  # the pod comes back under its name
    wait_for(lambda: requests_partitions(stack, 2) == held, 30, "the restarted member's share handed back")
    ids += stack.submit(*photos[60:120])
    outputs = stack.outputs(set(ids), timeout_s=180)
    outputs = stack.settle(1.0)
    assert changes() == before  # never revoked nor reassigned while the other member restarted
    assert not outputs.dead_letters
    twice = [i for i in ids if (len(outputs.masked[i]), len(outputs.metadata[i])) != (1, 1)]
    assert not twice, f"{len(twice)} requests not published exactly once"
