"""Assembles and runs one worker process: checks, resources, signals, clean shutdown."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from consumer.breaker import CircuitBreaker
from consumer.config import Guarantee, Settings
from consumer.delivery import AtLeastOnce, Delivery, ExactlyOnce, Outputs
from consumer.errors import SetupError
from consumer.fetch import Fetcher, FetchPolicy
from consumer.kafka_admin import missing_topics
from consumer.kafka_io import OutputProducer, RequestConsumer, TransactionalProducer
from consumer.offsets import OffsetTracker
from consumer.pipeline import Anonymizer
from consumer.pool import ProcessingPool
from consumer.process import RecordProcessor
from consumer.scan import ScanDetector
from consumer.worker import Worker

log = logging.getLogger(__name__)


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        allowed_roots=tuple(settings.allowed_roots),
        timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.max_image_bytes,
    )


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; a second SIGINT interrupts at once."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("received %s: finishing in-flight records, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def record_processor(settings: Settings) -> RecordProcessor:
    """A processor with its own detector and fetcher, for one processing thread."""
    detector = ScanDetector(settings.strategy, settings.models_dir)
    return RecordProcessor(settings, Anonymizer(detector, settings), Fetcher(fetch_policy(settings)))


def run_worker(settings: Settings, stop: threading.Event) -> None:
    """Run a worker until `stop` is set.

    Raises SetupError (models, topics or brokers not usable) before consuming anything;
    PublishError or ProcessingBug after committing the work that was finished.
    """
    pool = ProcessingPool(lambda: record_processor(settings), settings.processing_threads)
    pool.start()
    try:
        topics = [*settings.input_topics, *settings.output_topics]
        if missing := missing_topics(settings, topics):
            raise SetupError(f"topics {', '.join(missing)} do not exist: run `faceguard topics create`")
        tracker: OffsetTracker[Outputs] = OffsetTracker()
        breaker = CircuitBreaker(settings.breaker_window, settings.breaker_failure_ratio, settings.breaker_cooldown_s)
        worker = Worker(settings, pool, tracker, breaker)
        consumer = RequestConsumer(settings, worker.on_assign, worker.on_revoke, worker.on_lost)
        delivery: Delivery | None = None
        try:
            if settings.guarantee is Guarantee.EXACTLY_ONCE:
                delivery = ExactlyOnce(settings, tracker, consumer, TransactionalProducer(settings))
            else:
                delivery = AtLeastOnce(settings, tracker, consumer, OutputProducer(settings))
            worker.attach(consumer, delivery)
            worker.run(stop)
        finally:
            consumer.close()  # runs on_revoke: commits what finished
            if delivery is not None:
                delivery.close()
            log.info("worker %s stopped", settings.worker_id)
    finally:
        pool.close(timeout_s=settings.drain_timeout_s if stop.is_set() else 1.0)
