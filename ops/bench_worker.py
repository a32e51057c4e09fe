#!/usr/bin/env python3
"""Throughput of one worker through a real broker vs. the bare in-process pipeline, same images.

    .venv/bin/python ops/bench_worker.py [--images DIR] [--limit N]

Starts a throwaway local broker (ops/kafka_local.py) on a free port, creates
topics, submits every image under DIR (default: ../shared/data/faces/images),
runs one `faceguard worker` and times from the worker's first output to its
last. It then runs the same images through the pipeline in this process (fetch
from disk, decode, detect, mask, encode, no Kafka). It prints both rates and
their ratio. It is a measurement, not a test: numbers vary with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.config import Settings  # noqa: E402
from consumer.detect import FaceDetector  # noqa: E402
from consumer.fetch import read_file  # noqa: E402
from consumer.inputs import expand_images  # noqa: E402
from consumer.kafka_admin import OutputReader, create_topics  # noqa: E402
from consumer.pipeline import Anonymizer  # noqa: E402
from consumer.submit import build_requests, submit  # noqa: E402

BIN = Path(sys.executable).parent


def bare_pipeline(settings: Settings, images: list[Path]) -> float:
    """Images per second through fetch-from-disk, decode, detect, mask and encode in this process."""
    with FaceDetector(settings.model, settings.models_dir, settings.min_confidence) as detector:
        anonymizer = Anonymizer(detector, settings)
        started = time.perf_counter()
        for path in images:
            anonymizer.anonymize(read_file(path, settings.max_image_bytes), None)
        return len(images) / (time.perf_counter() - started)


def through_kafka(settings: Settings, images: list[Path], env: dict[str, str]) -> tuple[float, float]:
    """(images per second from first to last output, seconds from worker start to last output)."""
    create_topics(settings, 6, 1)
    requests = build_requests([p.resolve().as_uri() for p in images], None, {})
    assert all(error is None for error in submit(settings, requests)), "submit failed"
    reader = OutputReader(settings, [settings.topic_metadata, settings.topic_dlq], f"bench-{uuid.uuid4()}")
    started = time.perf_counter()
    worker = subprocess.Popen([str(BIN / "faceguard"), "worker"], env=env, stderr=subprocess.DEVNULL)
    times: list[float] = []
    try:
        while len(times) < len(requests) and time.perf_counter() - started < 1800:
            for record in reader.poll_batch(500, 0.2):
                if record.topic == settings.topic_dlq:
                    raise SystemExit(f"dead-lettered: {dict(record.headers)}")
                times.append(time.perf_counter())
    finally:
        worker.terminate()
        worker.wait()
        reader.close()
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return rate, times[-1] - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "faces" / "images")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    args = parser.parse_args()
    images = [path for path, _ in expand_images([args.images])]
    images = images[: args.limit] if args.limit else images

    with tempfile.TemporaryDirectory() as data:
        script = str(REPO / "ops" / "kafka_local.py")
        bootstrap = subprocess.run(
            [sys.executable, script, "start", "--data", data, "--port", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FACEGUARD_ALLOWED_ROOTS": str(args.images.resolve()),
            "FACEGUARD_GROUP_ID": prefix,
            "FACEGUARD_TOPIC_REQUESTS": f"{prefix}.requests",
            "FACEGUARD_TOPIC_MASKED": f"{prefix}.masked",
            "FACEGUARD_TOPIC_METADATA": f"{prefix}.metadata",
            "FACEGUARD_TOPIC_DLQ": f"{prefix}.dlq",
        }
        os.environ.update(env)
        settings = Settings()
        try:
            kafka_rate, wall = through_kafka(settings, images, env)
        finally:
            subprocess.run([sys.executable, script, "stop", "--data", data], capture_output=True, check=False)
    bare_rate = bare_pipeline(settings, images)
    result = {
        "images": len(images),
        "worker_images_per_s": round(kafka_rate, 2),
        "worker_wall_s_including_startup": round(wall, 1),
        "bare_pipeline_images_per_s": round(bare_rate, 2),
        "worker_over_bare": round(kafka_rate / bare_rate, 3),
    }
    print(f"{'images':>8} {'worker img/s':>13} {'bare img/s':>11} {'ratio':>6}")
    print(f"{len(images):>8} {kafka_rate:>13.2f} {bare_rate:>11.2f} {kafka_rate / bare_rate:>6.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
