"""Proof under crashes: two workers, one killed with SIGKILL again and again while 500 requests flow.

With exactly_once a read_committed reader sees exactly one masked image and one
metadata event per request; with at_least_once nothing is missing.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest

from tests.integration.conftest import MakeStack
from tests.support import annotated_images

pytestmark = pytest.mark.kafka

REQUESTS = 500
KILLS = 3


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_sigkill_at_random_moments_loses_nothing(make_stack: MakeStack, guarantee: str) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    stack = make_stack(
        partitions=4,
        FACEGUARD_GUARANTEE=guarantee,
        FACEGUARD_PROCESSING_THREADS="1",
        FACEGUARD_SESSION_TIMEOUT_MS="6000",  # a killed worker's partitions move on after 6 s, not 45
    )
    photos = [image.path for image in annotated_images()]
    ids = stack.submit(*(photos * 2)[:REQUESTS])
    workers: dict[str, subprocess.Popen[bytes]] = {name: stack.start_worker(name) for name in ("a", "b")}
    stack.outputs(20, timeout_s=120)

    finished_at_kill = [0]
    for _ in range(KILLS):
        # Kill while work flows: once progress resumed after the last restart, at a random moment.
        stack.outputs(min(REQUESTS, finished_at_kill[-1] + 15), timeout_s=120)
        time.sleep(rng.uniform(0.0, 1.5))
        finished_at_kill.append(len(stack.settle(0.1).finished()))
        victim = rng.choice(sorted(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=30)
        workers[victim] = stack.start_worker(victim)  # the supervisor restarts it under the same name

    outputs = stack.outputs(set(ids), timeout_s=300)
    outputs = stack.settle(3.0)
    context = f"seed={seed} finished at each kill={finished_at_kill}"
    assert sum(n < REQUESTS for n in finished_at_kill[1:]) >= 2, f"kills were meant to land midway ({context})"
    assert not outputs.dead_letters, context
    missing = [i for i in ids if not outputs.masked[i] or not outputs.metadata[i]]
    assert not missing, f"{len(missing)} requests lost ({context})"
    if guarantee == "exactly_once":
        twice = [i for i in ids if len(outputs.masked[i]) != 1 or len(outputs.metadata[i]) != 1]
        assert not twice, f"{len(twice)} requests published more than once ({context})"
    # At least once, a request whose worker died after publishing is published again: with the same
    # CloudEvents id, so a consumer keeping one event per (ce_source, ce_id) has each request once.
    for records in (outputs.masked, outputs.metadata):
        for request_id in ids:
            event_ids = {dict(r.headers)["ce_id"] for r in records[request_id]}
            assert len(event_ids) == 1, f"{request_id}: {len(records[request_id])} records, ids {event_ids} ({context})"
