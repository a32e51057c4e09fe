#!/usr/bin/env python3
"""Where the local broker's CPU goes while one worker runs flat out beside it, per group of JVM threads.

    .venv/bin/python ops/bench_broker.py [--runs 6] [--limit 200] [--jvm=-XX:+UseG1GC]

Starts a throwaway local broker (ops/kafka_local.py; `--jvm=OPTIONS` replaces its JVM
options, e.g. `--jvm=-XX:+UseG1GC` for the JVM's defaults: tiered JIT and G1), then
runs one two-thread `faceguard worker` flat out on fresh topics `--runs` times
over the first `--limit` photos of ../shared/data/faces. For each run it prints
the worker's images/s and the broker's CPU per image, split by the broker's
thread names as Linux reports them (/proc/PID/task: JIT compilers, garbage
collector, request handlers, metadata). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops"))

from bench_worker import cpu_seconds, temporary_broker, through_kafka  # noqa: E402

from consumer.commands.inputs import expand_images  # noqa: E402

SHOWN = 6  # thread groups printed per run, the busiest first


def cpu_by_thread_group(pid: int) -> dict[str, float]:
    """CPU seconds of a process's live threads, summed over names with their trailing numbers removed
    ("GC Thread#3" and "GC Thread#0" are one group)."""
    groups: defaultdict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name, cpu_s = (task / "comm").read_text().strip(), cpu_seconds(task / "stat")
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        groups[re.sub(r"[\d#-]+$", "", name)] += cpu_s
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "faces" / "images")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--jvm", help="the broker's JVM options instead of ops/kafka_local.py's")
    args = parser.parse_args()
    if args.jvm is not None:
        os.environ["FACEGUARD_KAFKA_JVM_OPTIONS"] = args.jvm
    images = [path for path, _ in expand_images([args.images])][: args.limit]
    with temporary_broker() as broker:
        print(f"broker JVM options: {os.environ.get('FACEGUARD_KAFKA_JVM_OPTIONS', 'ops/kafka_local.py defaults')}")
        for run in range(1, args.runs + 1):
            before, started = cpu_by_thread_group(broker.pid), time.perf_counter()
            images_per_s = through_kafka(broker.bootstrap, images, 2, "exactly_once")
            after, seconds = cpu_by_thread_group(broker.pid), time.perf_counter() - started
            spent = {name: after[name] - before.get(name, 0.0) for name in after}
            total_ms = 1000 * sum(spent.values()) / len(images)
            print(f"run {run}: worker {images_per_s:.2f} img/s; broker {total_ms:.1f} ms CPU per image", end="")
            print(f" ({seconds:.0f} s)")
            for name, cpu_s in sorted(spent.items(), key=lambda item: -item[1])[:SHOWN]:
                print(f"    {name:<18} {1000 * cpu_s / len(images):5.1f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
