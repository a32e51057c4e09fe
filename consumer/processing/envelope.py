"""CloudEvents (spec 1.0, Kafka protocol binding, binary content mode) on every record Faceguard publishes,
and CloudEvents read on the requests topic.

Outputs keep their value and our `faceguard-*` headers; the CloudEvents SDK's
Kafka binding (`cloudevents.kafka.to_binary`) adds the `ce_*` headers and the
`content-type`:

    ce_type         dev.faceguard.image.masked.v1, .image.stored.v1 (claim check), .faces.detected.v1,
                    .request.retried.v1, .request.dead_lettered.v1 (versioned: a breaking change is v2)
    ce_id           sha256 of the consumed record's topic, partition and offset and the event type: a record
                    processed again (a redelivery, an aborted transaction) publishes the same ids
    ce_source       this deployment: urn:faceguard:<consumer group>
    ce_subject      the request id (when known)
    ce_time         when the event was made
    ce_dataschema   the contract of the value (schemas/*.schema.json, `schemas.CLOUDEVENT_DATA`)

A request may itself be a CloudEvent: binary mode (its `ce_*` headers beside an
`ImageRequest` value) or structured mode (`application/cloudevents+json`: the
request is the envelope's `data`). Either way a request without `request_id`
takes the event's `id`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_structured, to_binary

from consumer.errors import InvalidRequest
from consumer.records import OutgoingRecord, Record
from consumer.topics import Topics
from schemas import CLOUDEVENT_DATA, CLOUDEVENT_TYPES, STORED_IMAGE_CONTENT_TYPE, dataschema_uri

STRUCTURED = "application/cloudevents+json"


class EventType(StrEnum):
    """The event types Faceguard publishes (declared with their data's contracts in `schemas`)."""

    IMAGE_MASKED = CLOUDEVENT_TYPES["image_masked"]
    IMAGE_STORED = CLOUDEVENT_TYPES["image_stored"]
    FACES_DETECTED = CLOUDEVENT_TYPES["faces_detected"]
    REQUEST_RETRIED = CLOUDEVENT_TYPES["request_retried"]
    REQUEST_DEAD_LETTERED = CLOUDEVENT_TYPES["request_dead_lettered"]


def dataschema(kind: EventType) -> str | None:
    """`ce_dataschema` of an event type: the URI of its data's JSON Schema (None for an image)."""
    contract = CLOUDEVENT_DATA[kind.name.lower()]
    return None if contract is None else dataschema_uri(contract)


def source_of(group_id: str) -> str:
    """`ce_source`: the deployment, named by its consumer group."""
    return f"urn:faceguard:{group_id}"


def event_type(record: OutgoingRecord, topics: Topics) -> EventType:
    """What an output record is, from its topic (and, for the masked image, whether the image was stored)."""
    if record.topic == topics.masked:
        stored = header(record.headers, "content-type") == STORED_IMAGE_CONTENT_TYPE
        return EventType.IMAGE_STORED if stored else EventType.IMAGE_MASKED
    if record.topic == topics.metadata:
        return EventType.FACES_DETECTED
    if record.topic == topics.dlq:
        return EventType.REQUEST_DEAD_LETTERED
    return EventType.REQUEST_RETRIED


def event_id(origin: Record, kind: EventType) -> str:
    """The same for the same consumed record and event type, whichever attempt publishes it."""
    return hashlib.sha256(f"{origin.topic}\0{origin.partition}\0{origin.offset}\0{kind}".encode()).hexdigest()[:32]


def enveloped(
    records: list[OutgoingRecord], origin: Record, request_id: str | None, source: str, topics: Topics
) -> list[OutgoingRecord]:
    """`records` as CloudEvents in binary content mode: the SDK's `ce_*` headers added, values unchanged."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for record in records:
        kind = event_type(record, topics)
        attributes = {
            "type": kind.value,
            "source": source,
            "id": event_id(origin, kind),
            "time": now,
            "datacontenttype": header(record.headers, "content-type") or "application/octet-stream",
        }
        if request_id:
            attributes["subject"] = request_id
        if (schema := dataschema(kind)) is not None:
            attributes["dataschema"] = schema
        message = to_binary(CloudEvent(attributes, b""), data_marshaller=lambda data: data)
        added = [(name, bytes(value)) for name, value in message.headers.items()]
        names = {name for name, _ in added}
        kept = [(name, value) for name, value in record.headers if name.lower() not in names]
        out.append(OutgoingRecord(record.topic, record.key, record.value, kept + added))
    return out


def request_id_of(records: list[OutgoingRecord]) -> str | None:
    """The request id the outputs name (`faceguard-request-id`), when the request was read."""
    for record in records:
        if (found := header(record.headers, "faceguard-request-id")) is not None:
            return found
    return None


def header(headers: list[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode(errors="replace")
    return None


def structured(record: Record) -> bool:
    """Whether `record` is a CloudEvent in structured content mode: so its content type says, or (as some SDKs
    label it plain JSON) a JSON object with a top-level `specversion` and no `ce_specversion` header."""
    content_type = (header(record.headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type == STRUCTURED:
        return True
    value = record.value or b""
    if header(record.headers, "ce_specversion") is not None or b'"specversion"' not in value:
        return False
    try:
        payload = json.loads(value)
    except ValueError:
        return False
    return isinstance(payload, dict) and "specversion" in payload


def request_value(record: Record) -> tuple[bytes | None, str | None]:
    """The `ImageRequest` JSON of a consumed record, and the id to give a request that names none (the
    CloudEvent's id, or the request id a retry carried). Raises InvalidRequest for a malformed CloudEvent."""
    fallback = header(record.headers, "faceguard-request-id") or header(record.headers, "ce_id")
    if not structured(record):
        return record.value, fallback
    try:
        event = from_structured(
            KafkaMessage({n: v for n, v in record.headers}, record.key, record.value or b""),
            data_unmarshaller=lambda data: data,
        )
    except Exception as exc:  # the SDK's own errors and the JSON decoder's: the envelope is malformed
        raise InvalidRequest(f"the value is not a structured CloudEvent: {exc}") from exc
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        value = data.encode() if isinstance(data, str) else data
    else:
        value = json.dumps(data).encode()
    return value, fallback or str(event["id"])
