"""CloudEvents on a real broker: a consumer written only against the CloudEvents SDK decodes every output
type and validates its data against the published schema; requests sent as CloudEvents (binary and
structured mode) are processed; the same consumed record processed again publishes the same event ids."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import jsonschema
import pytest
from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary, to_structured

from consumer.kafka.clients import OutputReader
from schemas.export import schema_path
from tests.image_server import ImageServer
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES

pytestmark = pytest.mark.kafka

ASTRONAUT = (SAMPLES / "astronaut.png").read_bytes()
TYPES = "dev.faceguard."
SCHEMAS = {
    f"urn:faceguard:schema:{name}:v1": json.loads(schema_path(name).read_text())
    for name in ("face_metadata_event", "image_request", "stored_image")
}


def decode(record: Any) -> CloudEvent:
    """What a platform's consumer does: the SDK's Kafka binding, binary content mode."""
    message = KafkaMessage({name: value for name, value in record.headers}, record.key, record.value)
    event: CloudEvent = from_binary(message, data_unmarshaller=lambda data: data)
    return event


def test_every_output_is_a_cloudevent_and_cloudevent_requests_are_processed(
    make_stack: MakeStack, image_server: ImageServer
) -> None:
    stack = make_stack(partitions=1, FACEGUARD_RETRY_DELAYS_S="1")
    flaky = image_server.script("/flaky.png", ASTRONAUT, fail_first=1)
    [plain] = stack.submit(SAMPLES / "astronaut.png")
    [retried] = stack.submit(flaky)
    binary = to_binary(
        CloudEvent(
            {
                "type": "com.example.cms.uploaded",
                "source": "urn:cms",
                "id": "ce-binary-1",
                "datacontenttype": "application/json",
            },
            {"image_ref": (SAMPLES / "coffee.png").as_uri()},
        ),
        data_marshaller=lambda data: json.dumps(data).encode(),
    )
    structured = to_structured(
        CloudEvent(
            {"type": "com.example.cms.uploaded", "source": "urn:cms", "id": "ce-structured-1"},
            {"request_id": "from-structured", "image_ref": (SAMPLES / "chelsea.png").as_uri()},
        )
    )
    for message in (binary, structured):
        value = message.value if isinstance(message.value, bytes) else message.value.encode()
        stack.produce_raw([value], headers=[(name, bytes(v)) for name, v in message.headers.items()])
    stack.produce_raw([b'{"request_id": "bad", "image_ref": "gopher://nope"}'])
    stack.start_worker()
    expected = {plain, retried, "ce-binary-1", "from-structured"}
    outputs = stack.outputs(lambda o: expected <= set(o.masked) & set(o.metadata) and len(o.dead_letters) == 1)

    events: dict[str, list[CloudEvent]] = defaultdict(list)
    records = [r for group in (outputs.masked, outputs.metadata) for rs in group.values() for r in rs]
    retries = OutputReader(stack.settings.kafka_client_config(), stack.settings.topics.retries, f"r-{uuid.uuid4()}")
    try:
        retry_records = retries.poll_batch(10, 10.0)
    finally:
        retries.close()
    assert len(retry_records) == 1
    for record in [*records, *outputs.dead_letters, *retry_records]:
        event = decode(record)
        assert event["specversion"] == "1.0"
        assert event["source"] == f"urn:faceguard:{stack.settings.group_id}"
        assert event["type"].startswith(TYPES)
        assert event["time"]
        events[event["type"]].append(event)
        if (schema := event.get("dataschema")) is not None:
            jsonschema.validate(json.loads(event.data), SCHEMAS[schema])
    assert sorted(events) == [
        TYPES + "faces.detected.v1",
        TYPES + "image.masked.v1",
        TYPES + "request.dead_lettered.v1",
        TYPES + "request.retried.v1",
    ]
    assert {e["subject"] for e in events[TYPES + "faces.detected.v1"]} == expected
    [retry] = events[TYPES + "request.retried.v1"]
    assert retry["subject"] == retried
    assert all(e["datacontenttype"] == "image/png" for e in events[TYPES + "image.masked.v1"])
    ids = [e["id"] for es in events.values() for e in es]
    assert len(ids) == len(set(ids))  # unique per event

    # The same consumed records processed again (here by a second deployment reading the same topics)
    # publish the same event ids: a consumer deduplicates on them.
    first = {rid: decode(outputs.metadata[rid][0])["id"] for rid in expected}
    stack.start_worker("again", FACEGUARD_GROUP_ID=f"{stack.settings.group_id}-again")

    def published_twice(o: Any) -> bool:
        return all([decode(r)["id"] for r in o.metadata[rid]].count(first[rid]) == 2 for rid in expected)

    assert published_twice(stack.outputs(published_twice, timeout_s=120))
