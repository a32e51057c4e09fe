"""Assembles and runs one worker process: checks, resources, signals, clean shutdown."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from consumer import package_version
from consumer.config import Guarantee, Settings
from consumer.detection.model_files import MODEL_FILES
from consumer.detection.scan import ScanDetector
from consumer.engine.attempts import Attempts
from consumer.engine.breaker import CircuitBreaker
from consumer.engine.delivery import AtLeastOnce, Delivery, ExactlyOnce
from consumer.engine.pool import ProcessingPool
from consumer.engine.worker import LAG_REFRESH_S, Observers, StopRequest, Worker
from consumer.errors import SetupError
from consumer.imaging.pixel_budget import PixelBudget
from consumer.kafka.admin import missing_topics
from consumer.kafka.consumer import RequestConsumer
from consumer.kafka.producers import OutputProducer, TransactionalProducer
from consumer.kafka.watermarks import WatermarkReader
from consumer.observability.health import Health, ProbeServer
from consumer.observability.metrics import Metrics
from consumer.processing.claim_check import ClaimCheck, open_store
from consumer.processing.pipeline import Anonymizer
from consumer.processing.processor import RecordProcessor
from consumer.processing.spans import Spans, open_spans
from consumer.sources.fetch import Fetcher, FetchPolicy
from consumer.sources.http import HttpLimits
from consumer.sources.s3 import S3Options

log = logging.getLogger(__name__)


def s3_options(settings: Settings) -> S3Options:
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        path_style=settings.s3_path_style,
        connect_timeout_s=settings.fetch_connect_timeout_s,
        read_timeout_s=settings.fetch_read_timeout_s,
    )


def fetch_policy(settings: Settings) -> FetchPolicy:
    limits = HttpLimits(
        connect_timeout_s=settings.fetch_connect_timeout_s,
        read_timeout_s=settings.fetch_read_timeout_s,
        total_timeout_s=settings.fetch_timeout_s,
        max_redirects=settings.fetch_max_redirects,
        max_bytes=settings.max_image_bytes,
    )
    return FetchPolicy(
        allowed_roots=tuple(settings.allowed_roots),
        http=limits,
        addresses=settings.address_policy,
        s3=s3_options(settings),
        s3_buckets=frozenset(settings.s3_buckets),
    )


def claim_check(settings: Settings) -> ClaimCheck:
    store = None if settings.output_store is None else open_store(settings.output_store, s3_options(settings))
    return ClaimCheck(store, settings.inline_max_bytes, settings.output_store_always)


def stop_on_signals() -> StopRequest:
    """A stop request set by the first SIGTERM or SIGINT; a second SIGINT interrupts at once."""
    stop = StopRequest()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("received %s: finishing in-flight records, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def record_processor(settings: Settings, spans: Spans, budget: PixelBudget) -> RecordProcessor:
    """A processor with its own detector and fetcher, for one processing thread, sharing `budget`."""
    detector = ScanDetector(settings.strategy, settings.models_dir)
    fetcher = Fetcher(fetch_policy(settings))
    anonymizer = Anonymizer(detector, settings.pipeline_options, budget)
    return RecordProcessor(settings.output_options, anonymizer, fetcher, claim_check(settings), spans)


def run_worker(settings: Settings, stop: StopRequest) -> None:
    """Run a worker until `stop` is set.

    Raises SetupError (models, topics or brokers not usable) before consuming anything;
    PublishError or ProcessingBug after committing the work that was finished.
    """
    metrics, health = Metrics(), Health(settings.loop_stall_s, settings.stuck_after_s)
    metrics.build.info(build_info(settings))
    probes = ProbeServer(settings.probe_port, health, metrics) if settings.probe_port else None
    if probes is not None:
        log.info("serving /metrics, /healthz and /readyz on port %d", probes.port)
    spans = open_spans(settings.otel, settings.worker_id)
    budget = PixelBudget(settings.max_pixels_in_flight)
    attempts = Attempts()  # shared: the processing threads count crashes, commits write them as crash marks
    make_processor = lambda: record_processor(settings, spans, budget)  # noqa: E731
    pool = ProcessingPool(make_processor, settings.processing_threads, health, attempts)
    try:
        pool.start()
        health.models_loaded = True
        client = settings.kafka_client_config()
        if missing := missing_topics(client, settings.topics.all):
            raise SetupError(f"topics {', '.join(missing)} do not exist: run `faceguard topics create`")
        breaker = CircuitBreaker(settings.breaker_window, settings.breaker_failure_ratio, settings.breaker_cooldown_s)
        watermarks = WatermarkReader(client, LAG_REFRESH_S)
        consumer = RequestConsumer(client, settings.group_options, settings.topics.inputs, LAG_REFRESH_S)
        delivery: Delivery | None = None
        try:
            delivery = open_delivery(settings, consumer, metrics, attempts)
            observers = Observers(metrics, health, watermarks)
            options = settings.worker_options
            worker = Worker(options, pool, consumer=consumer, delivery=delivery, breaker=breaker, observers=observers)
            log.info(
                "worker %s consuming %s as group %s (%s protocol) with %d processing threads, %s",
                settings.worker_id,
                ", ".join(settings.topics.inputs),
                settings.group_id,
                settings.group_protocol.value,
                settings.processing_threads,
                settings.guarantee.value,
            )
            worker.run(stop)
        finally:
            consumer.close()  # runs on_revoke: commits what finished
            if delivery is not None:
                delivery.close()
            watermarks.close()
            log.info("worker %s stopped", settings.worker_id)
    finally:
        pool.close(timeout_s=settings.drain_timeout_s if stop.is_set() else 1.0)
        spans.close()
        if probes is not None:
            probes.close()


def open_delivery(settings: Settings, consumer: RequestConsumer, metrics: Metrics, attempts: Attempts) -> Delivery:
    """The delivery strategy of the configured guarantee, with its producer. Raises SetupError when the
    transactional producer cannot start."""
    client, producer = settings.kafka_client_config(), settings.producer_options
    if settings.guarantee is Guarantee.EXACTLY_ONCE:
        transactional = TransactionalProducer(client, producer, settings.transaction_options, metrics)
        return ExactlyOnce(settings.commit_pacing, consumer, metrics, attempts, transactional)
    return AtLeastOnce(settings.commit_pacing, consumer, metrics, attempts, OutputProducer(client, producer))


def build_info(settings: Settings) -> dict[str, str]:
    """Labels of the faceguard_build info metric."""
    strategy = settings.strategy
    return {
        "version": package_version(),
        "preset": strategy.preset.value,
        "models": "+".join(MODEL_FILES[m].name for m in strategy.models),
        "guarantee": settings.guarantee.value,
    }
