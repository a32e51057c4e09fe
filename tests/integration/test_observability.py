"""Metrics and probes of a real worker on a real broker: counters move by the number of requests,
histograms are observed, lag returns to 0, and the probes flip as their conditions change."""

from __future__ import annotations

import json
import signal
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import ImageRequest
from tests.image_server import ImageServer
from tests.integration.conftest import MakeStack, broker
from tests.integration.stack import Stack, free_port
from tests.support import SAMPLES, wait_for

pytestmark = pytest.mark.kafka

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(port: int) -> Samples:
    status, body = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample of `name` with exactly these labels; a missing one fails the test (it is not 0)."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def probe(port: int, path: str) -> int:
    try:
        return get(port, path)[0]
    except OSError:
        return 0


def test_metrics_count_every_request_and_lag_returns_to_zero(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(partitions=12)  # more than the 8 records: some partitions stay empty
    port = free_port()
    good = stack.submit(*[SAMPLES / name for name in ("astronaut.png", "chelsea.png", "coffee.png")] * 2)
    [bad] = stack.submit((tmp_path / "missing.jpg").as_uri())
    traced_request = ImageRequest(request_id="traced-1", image_ref=(SAMPLES / "astronaut.png").as_uri())
    stack.produce_raw([traced_request.model_dump_json().encode()], [("traceparent", TRACEPARENT.encode())])
    stack.start_worker(FACEGUARD_PROBE_PORT=str(port))
    outputs = stack.outputs({*good, bad, "traced-1"}, timeout_s=90)
    requests = stack.settings.topic_requests

    def settled() -> bool:
        samples = scrape(port)
        lag = [  # every partition of every input topic, consumed from or not; None when missing
            samples.get(("faceguard_consumer_lag_records", frozenset({("topic", topic), ("partition", str(p))})))
            for topic in stack.settings.topics.inputs
            for p in range(12)
        ]
        return total(samples, "faceguard_records_finished_total") == 8 and lag == [0] * len(lag)

    wait_for(settled, 20, "all 8 records finished and lag read as 0")
    samples = scrape(port)
    assert value(samples, "faceguard_records_consumed_total", topic=requests) == 8
    assert (
        value(samples, "faceguard_records_finished_total", topic=requests, outcome="masked") == 3
    )  # the astronaut; `fast` finds no face in the cat
    assert value(samples, "faceguard_records_finished_total", topic=requests, outcome="no_faces") == 4
    assert value(samples, "faceguard_records_finished_total", topic=requests, outcome="dead_lettered") == 1
    assert value(samples, "faceguard_failures_total", error_class="source_not_found", action="dead_lettered") == 1
    assert value(samples, "faceguard_end_to_end_seconds_count") == 8
    for stage in ("fetch", "decode", "detect", "mask", "encode"):
        assert value(samples, "faceguard_stage_seconds_count", stage=stage) == 7
    assert value(samples, "faceguard_stage_seconds_count", stage="publish") >= 1
    assert value(samples, "faceguard_faces_per_image_count") == 7
    assert value(samples, "faceguard_image_bytes_total", direction="in") > 0
    assert value(samples, "faceguard_transactions_total", result="committed") >= 1
    assert value(samples, "faceguard_in_flight_records") == 0
    assert value(samples, "faceguard_backlog_seconds") == 0
    assert value(samples, "faceguard_circuit_breaker_open") == 0
    assert total(samples, "faceguard_build_info", preset="fast") == 1
    status, body = get(port, "/readyz")
    assert status == 200, body
    assert json.loads(body)["partitions"] == 12 * (1 + len(stack.settings.topics.retries))
    assert get(port, "/healthz")[0] == 200

    # Trace context: the request's trace id on both outputs, each under a new span of this worker.
    for record in (*outputs.masked["traced-1"], *outputs.metadata["traced-1"]):
        parent = dict(record.headers)["traceparent"].decode()
        assert parent.split("-")[1] == TRACE_ID
        assert parent.split("-")[2] != TRACEPARENT.split("-")[2]
    # Logs: every line one JSON object; request lines carry their fields; no image data anywhere.
    lines = stack.worker_log_lines()
    masked = [line for line in lines if line.get("request_id") == "traced-1"]
    assert masked, stack.worker_log()
    assert masked[0]["trace_id"] == TRACE_ID
    assert masked[0]["outcome"] == "masked"
    assert {"topic", "partition", "offset"} <= set(masked[0])
    [failed] = [line for line in lines if line.get("request_id") == bad]
    assert failed["error_class"] == "source_not_found"
    log = stack.worker_log()
    assert b"PNG" not in log.encode()
    assert max(len(line) for line in log.splitlines()) < 2000


def test_at_least_once_a_record_counts_as_finished_when_its_outputs_are_acknowledged(make_stack: MakeStack) -> None:
    """At least once, a record is finished when the broker has acknowledged its outputs, a few ms after they are
    sent. An idle worker waits on its poll for new requests (here up to 120 s): it must still serve the
    acknowledgements at once, or the record would be counted, its latency observed and its offset committed
    only when that poll ends."""
    stack = make_stack(partitions=1)
    port = free_port()
    stack.start_worker(
        FACEGUARD_GUARANTEE="at_least_once", FACEGUARD_POLL_TIMEOUT_S="120", FACEGUARD_PROBE_PORT=str(port)
    )
    [request] = stack.submit(SAMPLES / "astronaut.png")
    assert request in stack.outputs({request}, timeout_s=60).finished()
    wait_for(lambda: total(scrape(port), "faceguard_records_finished_total") == 1, 20, "the record counted as finished")
    samples = scrape(port)
    assert value(samples, "faceguard_end_to_end_seconds_count") == 1
    assert value(samples, "faceguard_end_to_end_seconds_sum") < 30  # the worker's start-up included; not 120


def test_a_thread_on_one_record_past_the_deadline_makes_the_worker_not_live(
    make_stack: MakeStack, image_server: ImageServer
) -> None:
    stack = make_stack(partitions=1, FACEGUARD_FETCH_READ_TIMEOUT_S="20")
    port = free_port()
    slow = image_server.script("/slow.png", (SAMPLES / "astronaut.png").read_bytes(), delay_s=8)
    stack.start_worker(FACEGUARD_PROBE_PORT=str(port), FACEGUARD_STUCK_AFTER_S="2")
    wait_for(lambda: probe(port, "/healthz") == 200, 60, "the worker to come up live")
    [request] = stack.submit(slow)
    wait_for(lambda: probe(port, "/healthz") == 503, 20, "the stuck thread to make /healthz fail")
    body = get(port, "/healthz")[1]
    assert len(json.loads(body)["stuck_threads"]) == 1, body  # one thread on the slow image
    stack.outputs({request}, timeout_s=30)
    wait_for(lambda: probe(port, "/healthz") == 200, 10, "/healthz to recover once the record finished")


def test_readiness_follows_the_broker(own_broker: tuple[str, Path], tmp_path: Path) -> None:
    bootstrap, data = own_broker
    stack = Stack(bootstrap, tmp_path, 1, [SAMPLES], {"FACEGUARD_PRESET": "fast"})
    port = free_port()
    try:
        stack.start_worker(FACEGUARD_PROBE_PORT=str(port))
        wait_for(lambda: probe(port, "/readyz") == 200, 60, "the worker to become ready")
        broker("stop", data)
        wait_for(lambda: probe(port, "/readyz") == 503, 30, "/readyz to fail with the broker gone")
        assert json.loads(get(port, "/readyz")[1])["broker_reachable"] is False
        assert probe(port, "/healthz") == 200, "a worker waiting for its broker is not dead"
        broker("start", data)
        wait_for(lambda: probe(port, "/readyz") == 200, 60, "/readyz to recover with the broker back")
    finally:
        stack.close()


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on loopback: keeps every span it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        spans: list[Any] = []
        self.spans = spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_opentelemetry_exports_a_span_per_request_and_stage_linked_to_the_outputs(make_stack: MakeStack) -> None:
    receiver = OtlpReceiver()
    try:
        stack = make_stack(partitions=1)
        request = ImageRequest(request_id="otel-1", image_ref=(SAMPLES / "astronaut.png").as_uri())
        stack.produce_raw([request.model_dump_json().encode()], [("traceparent", TRACEPARENT.encode())])
        worker = stack.start_worker(
            FACEGUARD_OTEL="true", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100"
        )
        outputs = stack.outputs({"otel-1"}, timeout_s=60)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0  # the exporter flushes on the way out
        by_name = {span.name: span for span in receiver.spans}
        process = by_name[f"faceguard.process {stack.settings.topic_requests}"]
        assert process.trace_id.hex() == TRACE_ID
        assert process.parent_span_id.hex() == TRACEPARENT.split("-")[2]
        for stage in ("fetch", "decode", "detect", "mask", "encode"):
            assert by_name[f"faceguard.{stage}"].parent_span_id == process.span_id
        for record in (*outputs.masked["otel-1"], *outputs.metadata["otel-1"]):
            traceparent = dict(record.headers)["traceparent"].decode()
            assert traceparent == f"00-{TRACE_ID}-{process.span_id.hex()}-01"
    finally:
        receiver.close()
