#!/usr/bin/env python3
"""Throughput of one worker process through a real broker vs. the bare in-process pipeline, same images,
same number of processing threads; and threads vs. processes for the bare pipeline.

    .venv/bin/python ops/bench_worker.py [--images DIR] [--limit N] [--threads 1,2] [--guarantee exactly_once]

Starts a throwaway local broker (ops/kafka_local.py) on a free port. For each
thread count it runs the bare pipeline in this process (read from disk, decode,
detect, mask, encode; one detector per thread; no Kafka), then submits every
image under DIR (default: ../shared/data/faces/images) to fresh topics and runs
one `faceguard worker` with that many processing threads, timing from its first
output to its last. It prints images/s for both, their ratio, the scaling from
one thread to two, and the bare pipeline with worker processes instead of
threads. A measurement, not a test: numbers vary with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops"))

from kafka_local import Broker  # noqa: E402

from consumer.commands.inputs import expand_images  # noqa: E402
from consumer.commands.submit import build_requests, submit  # noqa: E402
from consumer.config import Settings  # noqa: E402
from consumer.detection.scan import ScanDetector  # noqa: E402
from consumer.engine.heap import configure_heap  # noqa: E402
from consumer.imaging.pixel_budget import PixelBudget  # noqa: E402
from consumer.kafka.admin import create_topics, delete_topics  # noqa: E402
from consumer.kafka.clients import OutputReader  # noqa: E402
from consumer.processing.pipeline import Anonymizer  # noqa: E402
from consumer.sources.files import read_file  # noqa: E402

BIN = Path(sys.executable).parent
_local = threading.local()
_budget = PixelBudget(Settings().max_pixels_in_flight)  # shared by this process's threads, as in a worker


def _anonymize_one(path: Path) -> int:
    """Fetch-from-disk and anonymize one image with this thread's (or process's) own detector."""
    if not hasattr(_local, "anonymizer"):
        settings = Settings()
        detector = ScanDetector(settings.strategy, settings.models_dir)
        _local.anonymizer, _local.max_bytes = (
            Anonymizer(detector, settings.pipeline_options, _budget),
            settings.max_image_bytes,
        )
    return len(_local.anonymizer.anonymize(read_file(path, _local.max_bytes), None).data)


def bare_pipeline(
    images: list[Path], workers: int, pool: Callable[[int], ThreadPoolExecutor | ProcessPoolExecutor]
) -> float:
    """Images per second through the in-process pipeline with `workers` threads or processes (after warm-up)."""
    with pool(workers) as executor:
        list(executor.map(_anonymize_one, images[: 4 * workers]))  # load the detectors first
        started = time.perf_counter()
        list(executor.map(_anonymize_one, images, chunksize=1 if isinstance(executor, ThreadPoolExecutor) else 8))
        return len(images) / (time.perf_counter() - started)


@contextmanager
def worker_topics(bootstrap: str, images: list[Path], threads: int, guarantee: str) -> Iterator[dict[str, str]]:
    """Fresh topics and group for one benchmark worker, and its environment (also set in this process's,
    so that `Settings()` here reads the same). The topics and the folder of stored outputs are deleted
    after, so that a long benchmark does not leave the broker hundreds of partitions to tend."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    store = Path(tempfile.mkdtemp(prefix="faceguard-bench-"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FACEGUARD_ALLOWED_ROOTS": os.pathsep.join(sorted({str(p.parent.resolve()) for p in images})),
        "FACEGUARD_GROUP_ID": prefix,
        "FACEGUARD_WORKER_ID": "bench",
        "FACEGUARD_TOPIC_REQUESTS": f"{prefix}.requests",
        "FACEGUARD_TOPIC_MASKED": f"{prefix}.masked",
        "FACEGUARD_TOPIC_METADATA": f"{prefix}.metadata",
        "FACEGUARD_TOPIC_DLQ": f"{prefix}.dlq",
        "FACEGUARD_PROCESSING_THREADS": str(threads),
        "FACEGUARD_GUARANTEE": guarantee,
        "FACEGUARD_PROBE_PORT": "0",  # not needed here; the default port may be taken
        # Masked large photos outgrow a record: a folder takes them (claim check).
        "FACEGUARD_OUTPUT_STORE": store.as_uri(),
    }
    os.environ.update(env)
    settings = Settings()
    client = settings.kafka_client_config()
    create_topics(client, settings.topics, 6, 1, settings.max_record_bytes)
    try:
        yield env
    finally:
        delete_topics(client, settings.topics)
        shutil.rmtree(store, ignore_errors=True)


def cpu_seconds(stat: Path) -> float:
    """User plus system CPU seconds of a process (/proc/PID/stat) or of one of its threads
    (/proc/PID/task/TID/stat). Raises FileNotFoundError when it has ended."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class RunningBroker:
    bootstrap: str
    pid: int  # the broker's JVM, whose CPU the benchmarks report


@contextmanager
def temporary_broker() -> Iterator[RunningBroker]:
    """A throwaway local broker on a free port (ops/kafka_local.py)."""
    with tempfile.TemporaryDirectory() as data:
        script = str(REPO / "ops" / "kafka_local.py")
        bootstrap = subprocess.run(
            [sys.executable, script, "start", "--data", data, "--port", "0"], capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            pid = Broker(Path(data)).pid()
            assert pid is not None, "the broker said it started but has no live process"
            yield RunningBroker(bootstrap, pid)
        finally:
            subprocess.run([sys.executable, script, "stop", "--data", data], capture_output=True, check=False)


def through_kafka(bootstrap: str, images: list[Path], threads: int, guarantee: str) -> float:
    """Images per second of one worker on fresh topics: every image consumed from the broker and its outputs
    committed to it, timed from the first processed_at stamp to the last."""
    with worker_topics(bootstrap, images, threads, guarantee) as env:
        settings = Settings()
        requests = build_requests([p.resolve().as_uri() for p in images], None, {})
        client = settings.kafka_client_config()
        published = submit(client, settings.producer_options, settings.topic_requests, requests)
        assert all(error is None for error in published), "submit failed"
        reader = OutputReader(client, [settings.topic_metadata, settings.topic_dlq], f"bench-{uuid.uuid4()}")
        worker = subprocess.Popen([str(BIN / "faceguard"), "worker"], env=env, stderr=subprocess.DEVNULL)
        times: list[float] = []
        try:
            started = time.perf_counter()
            while len(times) < len(requests) and time.perf_counter() - started < 1800:
                for record in reader.poll_batch(500, 0.2):
                    if record.topic == settings.topic_dlq:
                        raise SystemExit(f"dead-lettered: {dict(record.headers)}")
                    times.append(datetime.fromisoformat(json.loads(record.value or b"")["processed_at"]).timestamp())
        finally:
            worker.terminate()
            worker.wait()
            reader.close()
    # Outputs arrive a committed batch at a time, so time the worker by its events' processed_at stamps.
    times.sort()
    return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "faces" / "images")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--repeat", type=int, default=2, help="submit the images this many times (default 2)")
    parser.add_argument("--threads", default="1,2", help="processing thread counts to measure (default 1,2)")
    parser.add_argument("--guarantee", default="exactly_once", choices=["exactly_once", "at_least_once"])
    args = parser.parse_args()
    configure_heap()  # as `faceguard` does, so that the in-process pipeline runs under the same heap
    images = [path for path, _ in expand_images([args.images])]
    images = (images[: args.limit] if args.limit else images) * args.repeat
    counts = [int(n) for n in args.threads.split(",")]

    rows = []
    with temporary_broker() as broker:
        bootstrap = broker.bootstrap
        for threads in counts:
            bare = bare_pipeline(images, threads, ThreadPoolExecutor)
            kafka = through_kafka(bootstrap, images, threads, args.guarantee)
            rows.append(
                {
                    "threads": threads,
                    "worker_images_per_s": round(kafka, 2),
                    "bare_images_per_s": round(bare, 2),
                    "worker_over_bare": round(kafka / bare, 3),
                }
            )
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that already runs detector threads
    processes = bare_pipeline(images, max(counts), lambda n: ProcessPoolExecutor(n, mp_context=spawn))

    print(f"{len(images)} images ({args.repeat} x {len(images) // args.repeat} from {args.images}), {args.guarantee}")
    print(f"{'threads':>7} {'worker img/s':>13} {'bare img/s':>11} {'worker/bare':>12}")
    for row in rows:
        print(
            f"{row['threads']:>7} {row['worker_images_per_s']:>13.2f} {row['bare_images_per_s']:>11.2f}"
            f" {row['worker_over_bare']:>12.3f}"
        )
    summary: dict[str, object] = {
        "images": len(images),
        "guarantee": args.guarantee,
        "rows": rows,
        f"bare_{max(counts)}_processes_images_per_s": round(processes, 2),
    }
    if len(rows) > 1:
        summary["worker_scaling"] = round(rows[-1]["worker_images_per_s"] / rows[0]["worker_images_per_s"], 3)
        summary["bare_thread_scaling"] = round(rows[-1]["bare_images_per_s"] / rows[0]["bare_images_per_s"], 3)
        print(
            f"{rows[-1]['threads']} threads over {rows[0]['threads']}: worker {summary['worker_scaling']}x,"
            f" bare {summary['bare_thread_scaling']}x"
        )
    print(f"bare pipeline with {max(counts)} processes instead of threads: {processes:.2f} img/s")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
