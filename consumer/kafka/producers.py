"""The worker's producers: idempotent (at least once, and the command line) and transactional (exactly once).

- `OutputProducer`: idempotent, acks=all; reports each record's delivery to a callback.
- `TransactionalProducer`: a batch's outputs and its consumed offsets in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.errors import GroupChanged, PublishError, SetupError
from consumer.kafka.messages import KAFKA_LOG, MEMBERSHIP_LOST, Offsets, log_client_error, produce, topic_partitions
from consumer.kafka.options import ClientConfig, ProducerOptions, TransactionOptions
from consumer.observability.metrics import Metrics
from consumer.records import OutgoingRecord, PartitionKey

log = logging.getLogger(__name__)


def producer_config(client: ClientConfig, options: ProducerOptions) -> dict[str, Any]:
    """The librdkafka configuration of an idempotent producer."""
    return {
        **client,
        "logger": KAFKA_LOG,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": options.max_record_bytes,
        "delivery.timeout.ms": int(options.delivery_timeout_s * 1000),
        "error_cb": log_client_error,
    }


class OutputProducer:
    """An idempotent producer; `send` reports each record's delivery to a callback."""

    def __init__(self, client: ClientConfig, options: ProducerOptions) -> None:
        self._producer = Producer(producer_config(client, options))

    def send(self, record: OutgoingRecord, on_delivery: Callable[[str | None], None]) -> None:
        """Queue `record`; `on_delivery(None)` once acknowledged, `on_delivery(reason)` on failure.

        Callbacks run inside `poll` or `flush`, on the caller's thread.
        """

        def report(error: KafkaError | None, _message: Message) -> None:
            on_delivery(None if error is None else error.str())

        produce(self._producer, record, report)

    def poll(self) -> None:
        """Serve delivery reports that are ready, without waiting."""
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued record's delivery report; returns how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)


class Deadline:
    """When a commit gives up: its own time limit, or sooner once `sooner` names a time (a stopping worker's
    drain deadline). Monotonic seconds."""

    def __init__(self, seconds: float, sooner: Callable[[], float | None] | None = None) -> None:
        self._at = time.monotonic() + seconds
        self._sooner = sooner

    def at(self) -> float:
        sooner = None if self._sooner is None else self._sooner()
        return self._at if sooner is None else min(self._at, sooner)

    def left(self) -> float:
        return max(0.0, self.at() - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() > self.at()


class _Hung(Exception):
    """A transactional call did not return within its own timeout."""


# Each blocking transactional call gets this timeout; a call still blocked this much later is hung.
TXN_CALL_TIMEOUT_S = 10.0
TXN_HUNG_AFTER_S = TXN_CALL_TIMEOUT_S + 5.0
WAIT_SLICE_S = 0.5  # how often a wait on a transactional call looks at its deadline again


class _Watchdog:
    """Runs blocking librdkafka calls on a helper thread; raises _Hung if one outlives TXN_HUNG_AFTER_S.

    librdkafka's send_offsets_to_transaction can ignore its timeout and block for
    good after the group coordinator went away (librdkafka issues 5456 and 5511;
    seen here across a broker restart). The caller then replaces the producer,
    and the hung helper thread is abandoned. Helper threads are daemons: an
    abandoned one must not keep a stopping worker from exiting (the interpreter
    joins a thread pool's threads at exit, and one of them never returned).
    """

    def call(self, blocking: Callable[[], None], deadline: Deadline) -> None:
        """Run `blocking`; raises _Hung when it outlives TXN_HUNG_AFTER_S or `deadline`, whichever is first
        (the deadline may come sooner while it runs: the worker was asked to stop). Re-raises what it raised."""
        done = threading.Event()
        raised: list[BaseException] = []

        def run() -> None:
            try:
                blocking()
            except BaseException as exc:  # handed to the caller's thread, which re-raises it
                raised.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="txn-call", daemon=True).start()
        hung_at = time.monotonic() + TXN_HUNG_AFTER_S
        while not done.wait(min(WAIT_SLICE_S, max(0.0, min(hung_at, deadline.at()) - time.monotonic()))):
            if time.monotonic() >= min(hung_at, deadline.at()):
                raise _Hung
        if raised:
            raise raised[0]


def transactional_config(
    client: ClientConfig, options: ProducerOptions, transaction: TransactionOptions
) -> dict[str, Any]:
    """The librdkafka configuration of the worker's transactional producer."""
    return {
        **producer_config(client, options),
        "transactional.id": transaction.transactional_id,
        "transaction.timeout.ms": int(transaction.timeout_s * 1000),
        # A transaction begun while the broker still writes the last one's commit markers is refused
        # (CONCURRENT_TRANSACTIONS) and retried after this backoff; at librdkafka's 100 ms every back-to-back
        # transaction waits it out (ops/bench_transactions.py). The Java client retries these after 20 ms.
        # Repeated failures still back off exponentially to the max.
        "retry.backoff.ms": 10,
        "retry.backoff.max.ms": 1000,
    }


# Fatal errors that mean another producer took this transactional id.
FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})


class TransactionalProducer:
    """Writes a batch's outputs and its consumed offsets in one transaction.

    The transactional id is stable per worker, so a restarted worker aborts its
    dead predecessor's open transaction at once, and a zombie is fenced. A
    transactional call that hangs is abandoned with its producer: a new producer
    under the same id fences the old one and aborts its open transaction, and the
    batch is written again.
    """

    def __init__(
        self, client: ClientConfig, options: ProducerOptions, transaction: TransactionOptions, metrics: Metrics
    ) -> None:
        self._config = transactional_config(client, options, transaction)
        self._id = transaction.transactional_id
        self._timeout_s = options.delivery_timeout_s
        self._metrics = metrics
        self._watchdog = _Watchdog()
        self._producer = self._start_producer(self._timeout_s)

    def _start_producer(self, timeout_s: float) -> Producer:
        producer = Producer(self._config)
        try:
            producer.init_transactions(timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            raise SetupError(
                f"cannot start transactions as {self._id}: {error.str()}"
                " (brokers without transactions need FACEGUARD_GUARANTEE=at_least_once)"
            ) from exc
        return producer

    def commit(
        self,
        outputs: Sequence[OutgoingRecord],
        offsets: Offsets,
        group_metadata: Callable[[], Any],
        stop_by: Callable[[], float | None] | None = None,
        metadata: dict[PartitionKey, str] | None = None,
    ) -> None:
        """Publish `outputs` and commit `offsets` (with their commit `metadata`) atomically. Call it on the
        consumer's thread (in its rebalance callbacks too): `group_metadata` is read there, where librdkafka
        answers it at once.

        librdkafka's error classes decide: a fatal error fences this worker (PublishError) or replaces the
        producer; an abortable or retriable one aborts the attempt and tries the same outputs again until
        `delivery_timeout_s`, or the monotonic time `stop_by` names, when sooner (then PublishError); a refused
        generation (MEMBERSHIP_LOST) aborts it and raises GroupChanged at once, since retrying cannot help.
        """
        deadline = Deadline(self._timeout_s, stop_by)
        while True:
            producer = self._producer
            open_transaction = False
            try:
                # Read on the caller's thread: from another thread, librdkafka answers only once the consumer
                # is polled, and a revoke callback waiting on this commit is exactly when it is not (a worker
                # hung here for 60 s whenever a member joined).
                group = group_metadata()
                producer.begin_transaction()
                open_transaction = True
                for record in outputs:
                    produce(producer, record, None)
                self._watchdog.call(
                    lambda producer=producer, group=group: producer.send_offsets_to_transaction(  # type: ignore[misc]
                        topic_partitions(offsets, metadata), group, TXN_CALL_TIMEOUT_S
                    ),
                    deadline,
                )
                self._commit_transaction(producer, deadline)
                return
            except _Hung:
                self._check_deadline(deadline, "a transactional call hung")
                log.error("a transactional call hung; replacing the producer (its transaction is aborted)")
                self._replace_producer(deadline)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    self._fatal(error, deadline)
                    continue
                if error.code() in MEMBERSHIP_LOST:
                    log.warning("the group moved on (%s): aborting the transaction", error.str())
                    if open_transaction:
                        self._abort(producer, deadline)
                    raise GroupChanged(error.str()) from exc
                self._check_deadline(deadline, error.str())
                log.warning("transaction failed; aborting it and trying again: %s", error.str())
                if open_transaction:
                    self._abort(producer, deadline)
                time.sleep(min(0.2, deadline.left()))

    def _fatal(self, error: KafkaError, deadline: Deadline) -> None:
        """After a fatal producer error: stop if fenced, else replace the producer.

        Fatal but not fenced happens when the broker restarts mid-transaction (for
        example INVALID_TXN_STATE on ending it); a new producer under the same id
        aborts the open transaction, and the batch is written again.
        """
        if error.code() in FENCED:
            raise PublishError(
                f"transactional producer {self._id} was fenced: {error.str()}"
                " (is another worker running with the same FACEGUARD_WORKER_ID?)"
            )
        self._check_deadline(deadline, error.str())
        log.error("transactional producer failed: %s; replacing it (its transaction is aborted)", error.str())
        self._replace_producer(deadline)

    def _replace_producer(self, deadline: Deadline) -> None:
        """A new producer under the same transactional id, retried until `deadline`."""
        self._metrics.transactions.labels("aborted").inc()  # the new producer aborts the open one
        while True:
            try:
                self._producer = self._start_producer(max(0.1, deadline.left()))
                return
            except SetupError as exc:
                self._check_deadline(deadline, str(exc))
                log.warning("%s; trying again", exc)
                time.sleep(min(1.0, deadline.left()))

    def _check_deadline(self, deadline: Deadline, why: str) -> None:
        if deadline.passed():
            raise PublishError(f"transaction not committed in time: {why}")

    def _commit_transaction(self, producer: Producer, deadline: Deadline) -> None:
        while True:
            try:
                self._watchdog.call(lambda: producer.commit_transaction(TXN_CALL_TIMEOUT_S), deadline)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable() or deadline.passed():
                    raise
                log.warning("transaction commit not acknowledged yet, retrying: %s", error.str())

    def _abort(self, producer: Producer, deadline: Deadline) -> None:
        while True:
            try:
                self._watchdog.call(lambda: producer.abort_transaction(TXN_CALL_TIMEOUT_S), deadline)
                self._metrics.transactions.labels("aborted").inc()
                return
            except _Hung:
                log.error("aborting a transaction hung; replacing the producer")
                self._replace_producer(deadline)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.fatal():
                    self._fatal(error, deadline)
                    return
                if not error.retriable() or deadline.passed():
                    raise PublishError(f"could not abort a failed transaction: {error.str()}") from exc

    def close(self) -> None:
        self._producer.flush(5.0)
