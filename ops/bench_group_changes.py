#!/usr/bin/env python3
"""Workers joining and leaving a busy exactly-once group, on a local broker: how long each change takes to
settle, and the throughput around it.

    .venv/bin/python ops/bench_group_changes.py [--requests 2400] [--partitions 6] [--threads 1]

Starts a broker of its own, submits the annotated photos of ../shared/data/faces (default preset), and runs
1 -> 2 -> 3 -> 2 workers (the last change a SIGTERM, as a scale-in). For each change it prints the seconds
until every worker holds its even share of the requests partitions, the images/s in the 10 s before the
change and in the 10 s after twice the session timeout, and at the end the counts: submitted, finished,
missing, duplicated, dead letters, unexpected exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.stack import Outputs, Stack  # noqa: E402
from tests.integration.test_group_changes import requests_partitions  # noqa: E402
from tests.support import SAMPLES, SHARED_DATA, annotated_images  # noqa: E402

sys.path.insert(0, str(REPO / "ops"))
import kafka_local  # noqa: E402

SESSION_S = 6


def finished_at(outputs: Outputs) -> list[float]:
    """When each finished request's metadata event says it was processed (epoch seconds), sorted."""
    import json
    from datetime import datetime

    stamps = []
    for records in outputs.metadata.values():
        event = json.loads(records[0].value or b"{}")
        stamps.append(datetime.fromisoformat(event["processed_at"].replace("Z", "+00:00")).timestamp())
    return sorted(stamps)


def rate(stamps: list[float], start: float, end: float) -> float:
    return sum(start <= s < end for s in stamps) / (end - start)


def settle(stack: Stack, live: list[int], partitions: int) -> float:
    """Seconds until each live worker holds its even share of the requests partitions."""
    started = time.monotonic()
    want = sorted(partitions // len(live) + (k < partitions % len(live)) for k in range(len(live)))
    while sorted(len(requests_partitions(stack, i)) for i in live) != want:
        time.sleep(0.2)
        if time.monotonic() - started > 120:
            return float("inf")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2400)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="processing threads per worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, kafka_local.running(Path(work) / "broker") as bootstrap:
        return run(args, Path(work), bootstrap)


def run(args: argparse.Namespace, work: Path, bootstrap: str) -> int:
    env = {"FACEGUARD_SESSION_TIMEOUT_MS": str(SESSION_S * 1000), "FACEGUARD_PROCESSING_THREADS": str(args.threads)}
    stack = Stack(bootstrap, work, args.partitions, [SHARED_DATA, SAMPLES], env)
    try:
        photos = [image.path for image in annotated_images()]
        ids = stack.submit(*(photos * (args.requests // len(photos) + 1))[: args.requests])
        workers = [stack.start_worker("w0")]
        stack.outputs(40, timeout_s=180)
        rows = []
        for change, live in (("1 -> 2", [0, 1]), ("2 -> 3", [0, 1, 2]), ("3 -> 2 (SIGTERM)", [0, 1])):
            time.sleep(10)
            at = time.time()
            if len(live) > len(workers):
                workers.append(stack.start_worker(f"w{len(workers)}"))
            else:
                workers[-1].send_signal(signal.SIGTERM)
            settled = settle(stack, live, args.partitions)
            time.sleep(max(0.0, at + 2 * SESSION_S + 10 - time.time()))
            rows.append((change, at, settled))
        outputs = stack.outputs(set(ids), timeout_s=600)
        outputs = stack.settle(3.0)
        stamps = finished_at(outputs)
        print(f"{'change':<18} {'even shares after':>18} {'images/s before':>16} {'after 2x session':>17} {'ratio':>6}")
        for change, at, settled in rows:
            before = rate(stamps, at - 10, at)
            after = rate(stamps, at + 2 * SESSION_S, at + 2 * SESSION_S + 10)
            ratio = after / before if before else float("nan")
            print(f"{change:<18} {settled:>17.1f}s {before:>16.2f} {after:>17.2f} {ratio:>6.2f}")
        missing = sum(1 for i in ids if not outputs.masked[i] or not outputs.metadata[i])
        twice = sum(1 for i in ids if len(outputs.masked[i]) > 1 or len(outputs.metadata[i]) > 1)
        exits = sum(1 for w in workers[:-1] if w.poll() is not None) + (workers[-1].wait(30) != 0)
        print(
            f"submitted {len(ids)}, finished {len(outputs.finished())}, missing {missing}, duplicated {twice}, "
            f"dead letters {len(outputs.dead_letters)}, unexpected exits {exits}"
        )
        return 0 if missing == twice == exits == 0 else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
