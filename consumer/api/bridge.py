"""POST /v1/requests: for callers that can do HTTP but not Kafka, an `ImageRequest` published to the
requests topic, keyed by its request id, as `faceguard submit` publishes it.

The answer (202) comes once the broker acknowledged the record, so an accepted
request is not lost. A broker that does not acknowledge within the request's
deadline gets 503; the record may still be delivered later, so a client that
retries sends the same request id (the outputs are keyed by it).
"""

from __future__ import annotations

import asyncio
import threading

from consumer.api.problems import Problem
from consumer.kafka.options import ClientConfig, ProducerOptions
from consumer.kafka.producers import OutputProducer
from consumer.processing.request import RequestLimits, parse_request_value
from consumer.records import JSON_HEADERS, OutgoingRecord
from schemas import ImageRequest

POLL_S = 0.05  # how often the delivery thread serves the producer's reports


class Bridge:
    """Publishes requests to `topic`; one idempotent producer, its reports served on a thread of its own."""

    def __init__(
        self, client: ClientConfig, options: ProducerOptions, topic: str, limits: RequestLimits, answer_within_s: float
    ) -> None:
        self.topic = topic
        self.limits = limits
        self._timeout_s = min(options.delivery_timeout_s, answer_within_s)
        self._producer = OutputProducer(client, options)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve_reports, name="bridge-deliveries", daemon=True)
        self._thread.start()

    def parse(self, body: bytes) -> ImageRequest:
        """The request in an HTTP body, checked as the worker checks a record. Raises InvalidRequest."""
        return parse_request_value(body, self.limits)

    async def publish(self, request: ImageRequest) -> None:
        """Publish `request` and wait for the broker's acknowledgement. Raises Problem 503 when it fails."""
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[str | None] = loop.create_future()

        def settle(error: str | None) -> None:
            if not delivered.done():
                delivered.set_result(error)

        def done(error: str | None) -> None:
            loop.call_soon_threadsafe(settle, error)

        record = OutgoingRecord(
            self.topic,
            request.request_id.encode(),
            request.model_dump_json(exclude_none=True).encode(),
            list(JSON_HEADERS),
        )
        self._producer.send(record, done)
        try:
            error = await asyncio.wait_for(delivered, self._timeout_s)
        except TimeoutError:  # the producer may still deliver it: a client resends with the same request id
            error = f"the broker did not acknowledge it within {self._timeout_s:g} s"
        if error is not None:
            raise Problem(
                503,
                "broker_unavailable",
                "Broker unavailable",
                f"the request was not published: {error}",
                {"Retry-After": "5"},
            )

    def _serve_reports(self) -> None:
        while not self._stopped.is_set():
            self._producer.poll()
            self._stopped.wait(POLL_S)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._producer.close()
