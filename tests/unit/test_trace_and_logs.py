"""Trace context carried from requests to outputs, and JSON log lines that hold only known fields."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from consumer.detection.model_files import DEFAULT_MODELS_DIR, ModelKind
from consumer.detection.network import FaceDetector
from consumer.observability.logs import JsonFormatter
from consumer.processing.trace import child_of, traced
from consumer.records import OutgoingRecord
from tests.support import REPO

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_request_span_continues_the_trace_under_a_new_span() -> None:
    context = child_of([("other", b"x"), ("traceparent", PARENT.encode())])
    assert context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context.span_id != "00f067aa0ba902b7"
    assert context.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", b"garbage")],
        [("traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01")],  # all-zero trace id
        [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")],  # all-zero span id
    ],
)
def test_without_a_valid_parent_a_new_trace_starts(headers: list[tuple[str, bytes]]) -> None:
    first, second = child_of(headers), child_of(headers)
    assert len(first.trace_id) == 32
    assert first.trace_id != second.trace_id
    assert first.trace_id != "0" * 32


def test_outputs_carry_exactly_one_traceparent() -> None:
    record = OutgoingRecord("t", b"k", b"v", [("traceparent", b"old"), ("content-type", b"image/png")])
    context = child_of([("traceparent", PARENT.encode())])
    [out] = traced([record], context)
    assert out.headers == [("content-type", b"image/png"), ("traceparent", context.traceparent.encode())]


def test_json_lines_hold_the_known_fields_and_nothing_else_attached() -> None:
    record = logging.LogRecord(
        "consumer.processing.processor", logging.INFO, __file__, 1, "masked request=%s", ("r1",), None
    )
    record.__dict__.update(request_id="r1", partition=2, offset=7, image=b"\x89PNG...", value=b"{...}")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "masked request=r1"
    assert line["request_id"] == "r1"
    assert (line["partition"], line["offset"]) == (2, 7)
    assert line["level"] == "info"
    assert "image" not in line
    assert "value" not in line


NATIVE_NOISE = """
import logging, os, sys
from consumer.native_stderr import native_stderr_silenced
from consumer.observability.logs import LogFormat, configure_logging
configure_logging(LogFormat.JSON, verbose=False)
with native_stderr_silenced():
    os.write(2, b"W0000 inference_runner_litert.cc] Input tensor memory is not aligned\\n")  # as LiteRT writes
    logging.getLogger("faceguard").warning("while the detector runs")
logging.getLogger("faceguard").warning("after it")
"""


def test_log_lines_survive_the_detectors_silence_and_native_noise_does_not_reach_the_log() -> None:
    """Descriptor 2 goes to /dev/null while MediaPipe runs; Python's log lines go to their own copy of it."""
    done = subprocess.run(
        [sys.executable, "-c", NATIVE_NOISE], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["while the detector runs", "after it"]


def test_every_detection_runs_inside_the_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    entered = []

    @contextlib.contextmanager
    def recorded() -> Iterator[None]:
        entered.append(True)
        yield

    with FaceDetector(ModelKind.SHORT_RANGE, DEFAULT_MODELS_DIR, 0.5) as detector:
        monkeypatch.setattr("consumer.detection.network.native_stderr_silenced", recorded)
        detector.detect(np.zeros((64, 64, 3), np.uint8))
        assert entered  # before closing, which is silenced too
