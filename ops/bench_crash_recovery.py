#!/usr/bin/env python3
"""What a worker's death costs the worker that takes over: careful mode after a SIGKILL, against a clean restart.

    .venv/bin/python ops/bench_crash_recovery.py [--requests 600] [--partitions 6] [--threads 2]

Starts a broker of its own and, twice, a fresh exactly-once stack: one worker masks the annotated photos of
../shared/data/faces (default preset); once 150 requests are done it is stopped, by SIGKILL in one run (its
crash marks make the next worker go carefully, one record at a time, over what it may have had in flight:
`consumer/engine/attempts.py`) and by SIGTERM in the other (a clean stop writes its marks back), and started
again under the same name. For each run it prints the images/s in the 10 s before the stop, in the first
20 s of output after the restart and in the 20 s after those, and the counts: submitted, finished, missing,
duplicated, dead letters.
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

from tests.integration.stack import Stack  # noqa: E402
from tests.support import SAMPLES, SHARED_DATA, annotated_images  # noqa: E402

sys.path.insert(0, str(REPO / "ops"))
import kafka_local  # noqa: E402
from bench_group_changes import finished_at, rate  # noqa: E402

WINDOW_S = 20.0
STOP_AFTER = 150  # requests done before the stop: the worker is past its start-up and busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2, help="processing threads of the worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, kafka_local.running(Path(work) / "broker") as bootstrap:
        print(f"{'stop':<8} {'images/s 10 s before':>21} {'first 20 s after':>17} {'next 20 s':>10} {'counts'}")
        failed = 0
        for stop in (signal.SIGKILL, signal.SIGTERM):
            failed += run(args, Path(work) / stop.name, bootstrap, stop)
        return 1 if failed else 0


def run(args: argparse.Namespace, work: Path, bootstrap: str, stop: signal.Signals) -> int:
    work.mkdir()
    env = {"FACEGUARD_SESSION_TIMEOUT_MS": "6000", "FACEGUARD_PROCESSING_THREADS": str(args.threads)}
    stack = Stack(bootstrap, work, args.partitions, [SHARED_DATA, SAMPLES], env)
    try:
        photos = [image.path for image in annotated_images()]
        ids = stack.submit(*(photos * (args.requests // len(photos) + 1))[: args.requests])
        worker = stack.start_worker("w0")
        stack.outputs(STOP_AFTER, timeout_s=300)
        stopped_at = time.time()
        worker.send_signal(stop)
        worker.wait(60)
        stack.start_worker("w0")  # the supervisor restarts it under its name
        outputs = stack.outputs(set(ids), timeout_s=900)
        outputs = stack.settle(3.0)
        stamps = finished_at(outputs)
        resumed = min(s for s in stamps if s > stopped_at + 1)
        before = rate(stamps, stopped_at - WINDOW_S / 2, stopped_at)
        first = rate(stamps, resumed, resumed + WINDOW_S)
        following = rate(stamps, resumed + WINDOW_S, resumed + 2 * WINDOW_S)
        missing = sum(1 for i in ids if not outputs.masked[i] or not outputs.metadata[i])
        twice = sum(1 for i in ids if len(outputs.masked[i]) > 1 or len(outputs.metadata[i]) > 1)
        counts = (
            f"submitted {len(ids)}, finished {len(outputs.finished())}, missing {missing}, duplicated {twice}, "
            f"dead letters {len(outputs.dead_letters)}"
        )
        print(f"{stop.name:<8} {before:>21.2f} {first:>17.2f} {following:>10.2f} {counts}")
        return 0 if missing == twice == len(outputs.dead_letters) == 0 else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
