"""Assembles and runs one worker process: checks, resources, signals, clean shutdown."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from consumer.config import Settings
from consumer.detect import FaceDetector
from consumer.errors import SetupError
from consumer.fetch import Fetcher, FetchPolicy
from consumer.kafka_io import OutputProducer, RequestConsumer, missing_topics
from consumer.pipeline import Anonymizer
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
        log.info("received %s: finishing the current record, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def run_worker(settings: Settings, stop: threading.Event) -> None:
    """Run a worker until `stop` is set.

    Raises SetupError (models, topics or brokers not usable) before consuming anything;
    PublishError or a bug after committing the work that was finished.
    """
    with FaceDetector(settings.model, settings.models_dir, settings.min_confidence) as detector:
        topics = [settings.topic_requests, settings.topic_masked, settings.topic_metadata, settings.topic_dlq]
        if missing := missing_topics(settings, topics):
            raise SetupError(f"topics {', '.join(missing)} do not exist: run `faceguard topics create`")
        fetcher = Fetcher(fetch_policy(settings))
        producer = OutputProducer(settings)
        consumer = RequestConsumer(settings, [settings.topic_requests])
        try:
            Worker(settings, Anonymizer(detector, settings), fetcher, consumer, producer).run(stop)
        finally:
            producer.close(settings.delivery_timeout_s)
            consumer.close()
            fetcher.close()
            log.info("worker %s stopped", settings.worker_id)
