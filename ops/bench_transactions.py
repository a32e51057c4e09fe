#!/usr/bin/env python3
"""How long one exactly-once commit takes on a local broker: back to back, and with a pause between.

    .venv/bin/python ops/bench_transactions.py [--transactions 150] [--pauses 0,0.012] [--backoffs 100,10]

Starts a throwaway local broker (ops/kafka_local.py) on a free port. For each
`retry.backoff.ms` in `--backoffs` (librdkafka's default 100, and the 10 the
worker's transactional producer is configured with) and each pause between
transactions, one producer configured as the worker's (`transactional_config`)
runs `--transactions` transactions the way a worker's commit does: a 20 kB and a
500 B record to two topics, the consumed offset sent to the transaction, commit.
It prints the median and p95 of the whole transaction and of its
send-offsets step, and how many took over 50 ms.

What it shows: a transaction begun while the broker still writes the previous
one's commit markers is refused with CONCURRENT_TRANSACTIONS and retried after
`retry.backoff.ms`; back to back, that is nearly every transaction. The first
`--transactions // 5` of each series are not counted (connections, coordinator
lookups). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops"))

from bench_worker import temporary_broker, worker_topics  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from consumer.config import Settings  # noqa: E402
from consumer.kafka.producers import transactional_config  # noqa: E402

SLOW_S = 0.05


def joined_consumer(settings: Settings) -> Consumer:
    """A consumer of the requests topic that has joined its group, for the group metadata a commit sends."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": settings.group_id, "enable.auto.commit": False})
    consumer.subscribe([settings.topic_requests])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise SystemExit("the consumer got no assignment within 30 s")
        consumer.poll(0.2)
    return consumer


def series(settings: Settings, consumer: Consumer, backoff_ms: int, pause_s: float, count: int) -> str:
    """`count` transactions by one producer; a line of figures for the counted ones."""
    transactional_id = f"bench-{uuid.uuid4().hex[:8]}"
    producer = Producer(
        {
            **transactional_config(
                settings.kafka_client_config(), settings.producer_options, settings.transaction_options
            ),
            "transactional.id": transactional_id,
            "retry.backoff.ms": backoff_ms,
        }
    )
    producer.init_transactions(30)
    request = TopicPartition(settings.topic_requests, 0)
    totals, offsets_steps = [], []
    for n in range(count):
        started = time.perf_counter()
        producer.begin_transaction()
        producer.produce(settings.topic_masked, b"x" * 20_000, key=b"k")
        producer.produce(settings.topic_metadata, b"y" * 500, key=b"k")
        sending = time.perf_counter()
        request.offset = n + 1
        producer.send_offsets_to_transaction([request], consumer.consumer_group_metadata(), 10)
        sent = time.perf_counter()
        producer.commit_transaction(10)
        if n >= count // 5:
            totals.append(time.perf_counter() - started)
            offsets_steps.append(sent - sending)
        time.sleep(pause_s)
    producer.flush(10)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.1f} {statistics.quantiles(values, n=20)[18] * 1000:7.1f}"

    slow = sum(1 for t in totals if t > SLOW_S)
    return f"{backoff_ms:>10} {pause_s * 1000:>8.0f} {ms(totals)}  {ms(offsets_steps)} {slow:>5} of {len(totals)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=150)
    parser.add_argument("--pauses", default="0,0.012", help="seconds between transactions (default 0,0.012)")
    parser.add_argument("--backoffs", default="100,10", help="retry.backoff.ms values (default 100,10)")
    args = parser.parse_args()
    with temporary_broker() as broker, worker_topics(broker.bootstrap, [], 1, "exactly_once"):
        settings = Settings()
        consumer = joined_consumer(settings)
        try:
            print("backoff ms pause ms  total: median p95 ms  send offsets: median p95 ms  over 50 ms")
            for backoff in (int(b) for b in args.backoffs.split(",")):
                for pause in (float(p) for p in args.pauses.split(",")):
                    print(series(settings, consumer, backoff, pause, args.transactions), flush=True)
        finally:
            consumer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
