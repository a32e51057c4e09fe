#!/usr/bin/env python3
"""The HTTP API against the bare pipeline, in one run: throughput, latency, overhead, CPU, and past capacity.

    .venv/bin/python ops/bench_http.py [--images 60] [--threads 2] [--concurrency 1 2 4 8]

Masks the first `--images` annotated photos of ../shared/data/faces (about 1024 px, default preset):
1. in process: `--threads` threads, each with its own anonymizer (as `faceguard serve` has them), each
   image once: images/s, and the pipeline's own time per image;
2. through `faceguard serve` (started here on a free loopback port with `--threads` processing threads),
   at each concurrency: the same images posted by that many clients (httpx, multipart, as a client
   sends them): requests/s, p50/p95/p99 latency, the server's CPU seconds per image, and at
   concurrency 1 the HTTP overhead per request (latency minus the pipeline time the server reports in
   X-Processing-Time-Ms);
3. past capacity: 3 times the threads plus the queue (which holds the largest concurrency) in clients at
   once, each sending one image: how many got 503 and how long the answered ones took;
4. one image at a time at 1080p and 4K (cut from ../shared/data/large): the median of 5 latencies.
Every figure printed comes from this one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.config import Settings  # noqa: E402
from consumer.detection.scan import ScanDetector  # noqa: E402
from consumer.processing.pipeline import Anonymizer  # noqa: E402
from tests.api_server import start_server  # noqa: E402
from tests.support import SHARED_DATA, annotated_images  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def in_process(images: list[bytes], threads: int) -> tuple[float, float]:
    """Images/s of `threads` anonymizers over `images`, and the mean pipeline milliseconds per image."""
    settings = Settings()
    anonymizers = [Anonymizer(ScanDetector(settings.strategy, settings.models_dir), settings.pipeline_options)]
    anonymizers += [
        Anonymizer(ScanDetector(settings.strategy, settings.models_dir), settings.pipeline_options)
        for _ in range(threads - 1)
    ]
    for anonymizer in anonymizers:
        anonymizer.anonymize(images[0], None)  # warm up
    next_index, lock, times = 0, threading.Lock(), []

    def work(anonymizer: Anonymizer) -> None:
        nonlocal next_index
        while True:
            with lock:
                index, next_index = next_index, next_index + 1
            if index >= len(images):
                return
            times.append(anonymizer.anonymize(images[index], None).processing_time_ms)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(a,)) for a in anonymizers]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    for anonymizer in anonymizers:
        anonymizer.detector.close()
    return len(images) / elapsed, statistics.mean(times)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def post_all(url: str, images: list[bytes], concurrency: int) -> list[tuple[int, float, float]]:
    """Each image posted once by `concurrency` clients: (status, latency ms, reported pipeline ms)."""
    clients = [httpx.Client(timeout=120) for _ in range(concurrency)]
    local = threading.local()
    counter = iter(range(len(clients)))
    lock = threading.Lock()

    def post(data: bytes) -> tuple[int, float, float]:
        if not hasattr(local, "client"):
            with lock:
                local.client = clients[next(counter)]
        started = time.perf_counter()
        answer = local.client.post(f"{url}/process", files={"image": ("photo.jpg", data, "image/jpeg")})
        latency = (time.perf_counter() - started) * 1000
        return answer.status_code, latency, float(answer.headers.get("x-processing-time-ms", "nan"))

    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(post, images))
    for client in clients:
        client.close()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def cut(path: Path, width: int, height: int, folder: Path) -> bytes:
    """A `width` x `height` JPEG cut from the middle of `path` (scaled down first if larger)."""
    pixels = cv2.imread(str(path))
    assert pixels is not None, path
    scale = max(width / pixels.shape[1], height / pixels.shape[0])
    pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    y, x = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    ok, data = cv2.imencode(".jpg", pixels[y : y + height, x : x + width], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    (folder / f"{width}x{height}.jpg").write_bytes(data.tobytes())
    return data.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    images = [image.path.read_bytes() for image in annotated_images()[: args.images]]

    bare_rate, bare_ms = in_process(images, args.threads)
    print(f"in process, {args.threads} threads: {bare_rate:.2f} images/s, pipeline {bare_ms:.1f} ms per image")

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        queue = max(args.concurrency)  # every client of the largest concurrency may wait: none is refused
        server = start_server(folder, FACEGUARD_HTTP_THREADS=str(args.threads), FACEGUARD_HTTP_QUEUE=str(queue))
        try:
            post_all(server.url, images[:4], 1)  # warm up
            print("concurrency  requests/s  vs in-process  p50 ms  p95 ms  p99 ms  CPU s/image  overhead p50 ms")
            for concurrency in args.concurrency:
                cpu_before, started = cpu_seconds(server.process.pid), time.perf_counter()
                results = post_all(server.url, images, concurrency)
                elapsed = time.perf_counter() - started
                cpu = (cpu_seconds(server.process.pid) - cpu_before) / len(images)
                assert all(status == 200 for status, _, _ in results), [r[0] for r in results]
                latencies = [latency for _, latency, _ in results]
                overhead = statistics.median(latency - pipeline for _, latency, pipeline in results)
                rate = len(images) / elapsed
                print(
                    f"{concurrency:11d}  {rate:10.2f}  {rate / bare_rate:13.2f}  {percentile(latencies, 0.5):6.0f}"
                    f"  {percentile(latencies, 0.95):6.0f}  {percentile(latencies, 0.99):6.0f}  {cpu:11.3f}"
                    f"  {overhead:15.1f}"
                )
            capacity = args.threads + queue
            flood = 3 * capacity
            results = post_all(server.url, (images * 3)[:flood], flood)
            answered = [latency for status, latency, _ in results if status == 200]
            refused = sum(1 for status, _, _ in results if status == 503)
            print(
                f"past capacity ({flood} clients at once, capacity {capacity}): {refused} answered 503,"
                f" {len(answered)} answered 200 in at most {max(answered):.0f} ms (p50 {percentile(answered, 0.5):.0f})"
            )
            for label, size in (("1080p", (1920, 1080)), ("4K", (3840, 2160))):
                photo = cut(SHARED_DATA / "large" / "dp2_regjeringen.jpg", *size, folder)
                latencies = [post_all(server.url, [photo], 1)[0][1] for _ in range(5)]
                median = statistics.median(latencies)
                print(f"one {label} image ({size[0]}x{size[1]}, a group photo): median {median:.0f} ms")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
