"""Every Prometheus metric of a worker, declared once, and the events that move them.

Names follow Prometheus conventions (`_total` counters, base units: seconds,
bytes). QPS is `sum(rate(faceguard_records_finished_total[1m]))`. Each worker
owns a `Metrics` with its own registry, so tests can run several in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

if TYPE_CHECKING:
    from consumer.processing.outcome import Outcome
    from consumer.processing.pipeline import AnonymizedImage

# 5 ms to 60 s: a small image's stage up to a 24 MP image waiting behind a backlog.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
FACES_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
MEGAPIXEL_BUCKETS = (0.1, 0.3, 1, 2, 4, 8, 12, 16, 24, 48)
STAGES = ("fetch", "decode", "detect", "mask", "encode")
EWMA_WEIGHT = 0.1  # share of the newest record in the recent processing time per record


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Throughput and outcomes.
        self.consumed = Counter(
            "faceguard_records_consumed_total", "Request records consumed, per topic.", ["topic"], registry=r
        )
        self.finished = Counter(
            "faceguard_records_finished_total",
            "Records whose outputs were acknowledged and offsets committed, by outcome "
            "(masked, no_faces, retried, dead_lettered).",
            ["topic", "outcome"],
            registry=r,
        )
        self.failures = Counter(
            "faceguard_failures_total",
            "Retried and dead-lettered records by error class.",
            ["error_class", "action"],
            registry=r,
        )
        self.processing_bugs = Counter(
            "faceguard_processing_bugs_total",
            "Times processing a record raised an unexpected exception (a bug of ours); a record that does on "
            "every attempt is dead-lettered as processing_bug.",
            registry=r,
        )
        # Latency.
        self.end_to_end = Histogram(
            "faceguard_end_to_end_seconds",
            "From the request record's timestamp to its outputs' acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "faceguard_stage_seconds",
            "Time in each pipeline stage per record (fetch, decode, detect, mask, encode, publish).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Images.
        self.faces = Histogram("faceguard_faces_per_image", "Faces found per image.", buckets=FACES_BUCKETS, registry=r)
        self.megapixels = Histogram(
            "faceguard_image_megapixels", "Decoded image size.", buckets=MEGAPIXEL_BUCKETS, registry=r
        )
        self.image_bytes = Counter(
            "faceguard_image_bytes_total", "Image bytes fetched (in) and encoded (out).", ["direction"], registry=r
        )
        # Load.
        self.in_flight = Gauge("faceguard_in_flight_records", "Records handed to processing threads.", registry=r)
        self.paused = Gauge("faceguard_paused_partitions", "Assigned partitions currently paused.", registry=r)
        self.lag = Gauge(
            "faceguard_consumer_lag_records",
            "Records not yet consumed per assigned partition: high watermark minus position (refreshed periodically).",
            ["topic", "partition"],
            registry=r,
        )
        self.backlog = Gauge(
            "faceguard_backlog_seconds",
            "Estimated seconds to work off the lag at the recent processing time per record.",
            registry=r,
        )
        self.breaker_open = Gauge("faceguard_circuit_breaker_open", "1 while the circuit breaker is open.", registry=r)
        self.transactions = Counter(
            "faceguard_transactions_total",
            "Kafka transactions, by result (committed, aborted).",
            ["result"],
            registry=r,
        )
        self.build = Info("faceguard_build", "Version, detection preset and models of this worker.", registry=r)
        self._seconds_per_record: float | None = None

    def processed(self, outcome: Outcome) -> None:
        """A processing thread finished a record (before publishing)."""
        result = outcome.result
        if result is None:
            return
        self.anonymized(result, outcome.input_bytes)
        seconds = result.processing_time_ms / 1000
        previous = self._seconds_per_record
        self._seconds_per_record = seconds if previous is None else previous + EWMA_WEIGHT * (seconds - previous)

    def anonymized(self, result: AnonymizedImage, input_bytes: int) -> None:
        """The pipeline masked an image (a record's, or an HTTP request's)."""
        timings = result.timings
        for stage in STAGES:
            self.stage.labels(stage).observe(getattr(timings, f"{stage}_ms") / 1000)
        self.faces.observe(len(result.faces))
        self.megapixels.observe(result.width * result.height / 1e6)
        self.image_bytes.labels("in").inc(input_bytes)
        self.image_bytes.labels("out").inc(len(result.data))

    def committed(self, outcomes: Iterable[Outcome], publish_s: float) -> None:
        """These records' outputs were acknowledged and their offsets committed."""
        now_ms = time.time() * 1000
        count = 0
        for outcome in outcomes:
            count += 1
            record = outcome.record
            self.finished.labels(record.topic, outcome.kind.value).inc()
            if outcome.error_class is not None:
                self.failures.labels(outcome.error_class.value, outcome.kind.value).inc()
            if record.timestamp_ms > 0:
                self.end_to_end.observe(max(0.0, (now_ms - record.timestamp_ms) / 1000))
        if count:
            self.stage.labels("publish").observe(publish_s / count)

    def lag_refreshed(self, lag: dict[tuple[str, int], int], threads: int) -> None:
        """New per-partition lag; the backlog estimate follows from it."""
        self.lag.clear()
        for (topic, partition), records in lag.items():
            self.lag.labels(topic, str(partition)).set(records)
        per_record = self._seconds_per_record or 0.0
        self.backlog.set(sum(lag.values()) * per_record / max(1, threads))


class HttpMetrics:
    """The HTTP API's own metrics, beside the pipeline's (`Metrics`) in the same registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "faceguard_http_requests_total",
            "HTTP requests answered, by route (its template), method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "faceguard_http_request_seconds",
            "From a request's arrival to its answer's first byte, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "faceguard_http_in_flight_requests", "Requests being answered (waiting or processed).", registry=r
        )
        self.queued = Gauge("faceguard_http_queued_requests", "Requests waiting for a processing thread.", registry=r)
        self.busy_threads = Gauge("faceguard_http_busy_threads", "Processing threads working on a request.", registry=r)
        self.refused = Counter(
            "faceguard_http_refused_total",
            "Requests answered 503 without their work done, by reason (at_capacity, deadline).",
            ["reason"],
            registry=r,
        )
