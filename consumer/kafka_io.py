"""The Kafka boundary of the worker: its consumer and its two kinds of producer.

With `kafka_admin`, the only modules that import confluent_kafka. Consumed
messages become `Record`s and outputs are `OutgoingRecord`s, so the rest of the
service is plain Python; Kafka errors are translated into Faceguard's here.

- `RequestConsumer`: a group member that never commits on its own (no auto
  commit, no auto offset store), reads `read_committed`, and reports
  assignment changes to the worker.
- `TransactionalProducer` (exactly_once): outputs and consumed offsets of a
  batch in one transaction.
- `OutputProducer` (at_least_once, and the CLI): idempotent, acks=all.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # OffsetSpec: not in stubs

from consumer.config import GroupProtocol, Settings
from consumer.errors import PublishError, SetupError
from consumer.metrics import Metrics
from consumer.offsets import LogOffsets, PartitionKey
from consumer.records import Headers, OutgoingRecord, Record

log = logging.getLogger(__name__)
KAFKA_LOG = logging.getLogger("kafka")  # librdkafka's own lines, formatted like ours

PartitionsCallback = Callable[[list[PartitionKey]], None]
# (topic, partition) -> next offset to consume
Offsets = dict[PartitionKey, int]


def to_record(message: Message) -> Record:
    _, timestamp = message.timestamp()
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        timestamp_ms=timestamp,
        headers=decoded_headers(message),
    )


def decoded_headers(message: Message) -> Headers:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(name, value.encode() if isinstance(value, str) else value or b"") for name, value in pairs]


def log_client_error(error: KafkaError) -> None:
    log.warning("kafka client: %s", error.str())


def _partitions(offsets: Offsets) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]


class RequestConsumer:
    """A consumer-group member on the input topics. Commits only when told to.

    Its statistics, every `stats_interval_s`, say from which committed offset each assigned partition
    started: lag on a partition it has consumed nothing from counts from there."""

    def __init__(
        self,
        settings: Settings,
        on_assign: PartitionsCallback,
        on_revoke: PartitionsCallback,
        on_lost: PartitionsCallback,
        stats_interval_s: float,
    ) -> None:
        self._started_from: dict[PartitionKey, int | None] = {}
        config: dict[str, Any] = {
            **settings.kafka_client_config(),
            "logger": KAFKA_LOG,
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "max.poll.interval.ms": settings.max_poll_interval_ms,
            "isolation.level": "read_committed",
            "error_cb": log_client_error,
            "statistics.interval.ms": int(stats_interval_s * 1000),
            "stats_cb": self._read_stats,
        }
        if settings.group_protocol is GroupProtocol.CONSUMER:
            config["group.protocol"] = "consumer"  # KIP-848: the broker assigns; no client assignor settings
        else:
            config["partition.assignment.strategy"] = "cooperative-sticky"
            config["session.timeout.ms"] = settings.session_timeout_ms
        self._consumer = Consumer(config)

        def keys(partitions: list[TopicPartition]) -> list[PartitionKey]:
            return [(tp.topic, tp.partition) for tp in partitions]

        def forget(partitions: list[PartitionKey]) -> list[PartitionKey]:
            for partition in partitions:
                self._started_from.pop(partition, None)
            return partitions

        self._consumer.subscribe(
            settings.input_topics,
            on_assign=lambda _c, parts: on_assign(keys(parts)),
            on_revoke=lambda _c, parts: on_revoke(forget(keys(parts))),
            on_lost=lambda _c, parts: on_lost(forget(keys(parts))),
        )

    def _read_stats(self, stats_json: str) -> None:
        """librdkafka's statistics (served by `consume`): each partition's committed offset once its
        fetching is under way, that is once the offset it starts from is settled."""
        for topic, topic_stats in json.loads(stats_json).get("topics", {}).items():
            for partition, stats in topic_stats.get("partitions", {}).items():
                if partition != "-1" and stats.get("fetch_state") == "active":  # -1: librdkafka's own queue
                    committed = stats.get("committed_offset", -1)
                    self._started_from[(topic, int(partition))] = committed if committed >= 0 else None

    def started_from(self) -> dict[PartitionKey, int | None]:
        """The committed offset (None: none) each partition started from, for those whose fetching began."""
        return dict(self._started_from)

    def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout_s` for the first; serves rebalance callbacks.

        Raises PublishError on a fatal consumer error.
        """
        records = []
        # Wait for the first record only, then take what else is buffered: consume(n, timeout) would
        # wait out the whole timeout for n records, holding a lone request back by up to a second.
        messages = self._consumer.consume(num_messages=1, timeout=timeout_s)
        if messages and max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        for message in messages:
            error = message.error()
            if error is None:
                records.append(to_record(message))
            elif error.fatal():
                raise PublishError(f"fatal consumer error: {error.str()}")
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error.str())
        return records

    def pause(self, partitions: Iterable[PartitionKey]) -> None:
        """Stop fetching `partitions` (prefetched records are dropped; fetching resumes at the next unread one)."""
        self._consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Iterable[PartitionKey]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def commit(self, offsets: Offsets) -> None:
        """Commit these positions synchronously (at_least_once). Raises PublishError when the group refuses."""
        if not offsets:
            return
        partitions = _partitions(offsets)
        try:
            self._consumer.store_offsets(offsets=partitions)
            self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            raise PublishError(f"offset commit failed: {exc.args[0]}") from exc

    def positions(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, int]:
        """The consumer's next offset per partition (-1 before its first fetch); local, no broker call."""
        wanted = [TopicPartition(t, p) for t, p in partitions]
        return {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(wanted)} if wanted else {}

    def group_metadata(self) -> Any:
        """The consumer's group metadata, for sending offsets within a transaction."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (runs the revoke callback for what is still assigned)."""
        self._consumer.close()


def _produce(producer: Producer, record: OutgoingRecord, on_delivery: Callable[..., None] | None) -> None:
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=[(n, v) for n, v in record.headers],
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            producer.poll(0.1)  # local queue full: serve delivery reports, then try again
        except KafkaException as exc:
            raise PublishError(f"could not produce to {record.topic}: {exc.args[0]}") from exc


def _producer_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.kafka_client_config(),
        "logger": KAFKA_LOG,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": settings.max_record_bytes,
        "delivery.timeout.ms": int(settings.delivery_timeout_s * 1000),
        "error_cb": log_client_error,
    }


class OutputProducer:
    """An idempotent producer; `send` reports each record's delivery to a callback."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer(_producer_config(settings))

    def send(self, record: OutgoingRecord, on_delivery: Callable[[str | None], None]) -> None:
        """Queue `record`; `on_delivery(None)` once acknowledged, `on_delivery(reason)` on failure.

        Callbacks run inside `poll` or `flush`, on the caller's thread.
        """

        def report(error: KafkaError | None, _message: Message) -> None:
            on_delivery(None if error is None else error.str())

        _produce(self._producer, record, report)

    def poll(self) -> None:
        """Serve delivery reports that are ready, without waiting."""
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued record's delivery report; returns how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)


class _Hung(Exception):
    """A transactional call did not return within its own timeout."""


# Each blocking transactional call gets this timeout; a call still blocked this much later is hung.
TXN_CALL_TIMEOUT_S = 10.0
TXN_HUNG_AFTER_S = TXN_CALL_TIMEOUT_S + 5.0


class _Watchdog:
    """Runs blocking librdkafka calls on a helper thread; raises _Hung if one outlives TXN_HUNG_AFTER_S.

    librdkafka's send_offsets_to_transaction can ignore its timeout and block for
    good after the group coordinator went away (librdkafka issues 5456 and 5511;
    seen here across a broker restart). The caller then replaces the producer,
    and the hung helper thread is abandoned.
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="txn-call")

    def call(self, blocking: Callable[[], None]) -> None:
        future = self._executor.submit(blocking)
        try:
            future.result(TXN_HUNG_AFTER_S)
        except FutureTimeout:
            self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="txn-call")
            raise _Hung from None


class WatermarkReader:
    """Reads the log offsets (first and next) of the watched partitions on a thread of its own, every
    `interval_s`, in two ListOffsets requests (an AdminClient, so the consumer thread never waits on the
    broker).
    `reachable` says whether the broker answered the last round.

    When a read fails, a metadata request decides whether the broker is there. It also refreshes the
    partitions' leader epochs: after a broker restarts, librdkafka's ListOffsets keeps sending the
    epochs from before it, and the broker refuses them (FENCED_LEADER_EPOCH) until metadata is
    fetched again, which nothing else in an AdminClient does."""

    def __init__(self, settings: Settings, interval_s: float) -> None:
        config: dict[str, Any] = {**settings.kafka_client_config(), "logger": KAFKA_LOG}
        self._admin = AdminClient(config)
        self._interval_s = interval_s
        self._watched: frozenset[PartitionKey] = frozenset()
        self.logs: dict[PartitionKey, LogOffsets] = {}
        self.reachable = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watermarks", daemon=True)
        self._thread.start()

    def watch(self, partitions: Iterable[PartitionKey]) -> None:
        self._watched = frozenset(partitions)

    def _run(self) -> None:
        failure = ""  # the last failure logged, so that a lasting one is logged once
        while True:
            watched = self._watched  # one snapshot: the consumer thread may replace it meanwhile
            try:
                if watched:
                    self.logs = self._read(watched)
                    self.reachable, failure = True, ""
                else:
                    self.reachable = self._metadata_answered()
            except (KafkaException, FutureTimeout) as exc:
                self.reachable = self._metadata_answered()
                if str(exc) != failure:
                    failure = str(exc)
                    log.warning("watermark query failed (broker %s): %s", "up" if self.reachable else "down", exc)
            if self._stop.wait(self._interval_s):
                return

    @property
    def _timeout_s(self) -> float:
        return max(1.0, self._interval_s)

    def _read(self, partitions: frozenset[PartitionKey]) -> dict[PartitionKey, LogOffsets]:
        lows = self._list_offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        highs = self._list_offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {p: LogOffsets(lows[p], highs[p]) for p in partitions}

    def _list_offsets(self, partitions: frozenset[PartitionKey], spec: Any) -> dict[PartitionKey, int]:
        wanted = {TopicPartition(t, p): spec for t, p in partitions}
        futures = self._admin.list_offsets(wanted, request_timeout=self._timeout_s)
        return {(tp.topic, tp.partition): future.result(self._timeout_s).offset for tp, future in futures.items()}

    def _metadata_answered(self) -> bool:
        try:
            self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException:
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


def transactional_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka configuration of the worker's transactional producer."""
    return {
        **_producer_config(settings),
        "transactional.id": settings.transactional_id,
        "transaction.timeout.ms": int(settings.transaction_timeout_s * 1000),
        # A transaction begun while the broker still writes the last one's commit markers is refused
        # (CONCURRENT_TRANSACTIONS) and retried after this backoff. At librdkafka's 100 ms, back-to-back
        # transactions took 100 ms each on the local broker instead of 13 (ops/bench_transactions.py); the
        # Java client retries these after 20 ms. Repeated failures still back off exponentially to the max.
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

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._watchdog = _Watchdog()
        self._producer = self._start_producer()

    def _start_producer(self) -> Producer:
        settings = self._settings
        producer = Producer(transactional_config(settings))
        try:
            producer.init_transactions(settings.delivery_timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            raise SetupError(
                f"cannot start transactions as {settings.transactional_id}: {error.str()}"
                " (brokers without transactions need FACEGUARD_GUARANTEE=at_least_once)"
            ) from exc
        return producer

    def commit(self, outputs: Sequence[OutgoingRecord], offsets: Offsets, group_metadata: Callable[[], Any]) -> None:
        """Publish `outputs` and commit `offsets` atomically.

        Failed or hung attempts are aborted and retried with the same outputs until
        `delivery_timeout_s`. Raises PublishError when fenced (another worker took this
        transactional id) or when the broker stays unavailable.
        """
        deadline = time.monotonic() + self._settings.delivery_timeout_s
        while True:
            producer = self._producer
            open_transaction = False
            try:
                producer.begin_transaction()
                open_transaction = True
                for record in outputs:
                    _produce(producer, record, None)
                self._watchdog.call(
                    lambda producer=producer: producer.send_offsets_to_transaction(  # type: ignore[misc]
                        _partitions(offsets), group_metadata(), TXN_CALL_TIMEOUT_S
                    )
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
                self._check_deadline(deadline, error.str())
                log.warning("transaction failed; aborting it and trying again: %s", error.str())
                if open_transaction:
                    self._abort(producer, deadline)
                time.sleep(0.2)

    def _fatal(self, error: KafkaError, deadline: float) -> None:
        """After a fatal producer error: stop if fenced, else replace the producer.

        Fatal but not fenced happens when the broker restarts mid-transaction (for
        example INVALID_TXN_STATE on ending it); a new producer under the same id
        aborts the open transaction, and the batch is written again.
        """
        if error.code() in FENCED:
            raise PublishError(
                f"transactional producer {self._settings.transactional_id} was fenced: {error.str()}"
                " (is another worker running with the same FACEGUARD_WORKER_ID?)"
            )
        self._check_deadline(deadline, error.str())
        log.error("transactional producer failed: %s; replacing it (its transaction is aborted)", error.str())
        self._replace_producer(deadline)

    def _replace_producer(self, deadline: float) -> None:
        """A new producer under the same transactional id, retried until `deadline`."""
        self._metrics.transactions.labels("aborted").inc()  # the new producer aborts the open one
        while True:
            try:
                self._producer = self._start_producer()
                return
            except SetupError as exc:
                self._check_deadline(deadline, str(exc))
                log.warning("%s; trying again", exc)
                time.sleep(1.0)

    def _check_deadline(self, deadline: float, why: str) -> None:
        if time.monotonic() > deadline:
            raise PublishError(f"transaction not committed within {self._settings.delivery_timeout_s:g}s: {why}")

    def _commit_transaction(self, producer: Producer, deadline: float) -> None:
        while True:
            try:
                self._watchdog.call(lambda: producer.commit_transaction(TXN_CALL_TIMEOUT_S))
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable() or time.monotonic() > deadline:
                    raise
                log.warning("transaction commit not acknowledged yet, retrying: %s", error.str())

    def _abort(self, producer: Producer, deadline: float) -> None:
        while True:
            try:
                self._watchdog.call(lambda: producer.abort_transaction(TXN_CALL_TIMEOUT_S))
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
                if not error.retriable() or time.monotonic() > deadline:
                    raise PublishError(f"could not abort a failed transaction: {error.str()}") from exc

    def close(self) -> None:
        self._producer.flush(5.0)
