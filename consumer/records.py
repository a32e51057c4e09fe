"""Plain record types shared by every stage; the Kafka adapter converts to and from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

Headers = list[tuple[str, bytes]]
JSON_HEADERS: Headers = [("content-type", b"application/json")]  # a record whose value is JSON text
# (topic, partition)
PartitionKey = tuple[str, int]
Contract = TypeVar("Contract", bound=BaseModel)


def to_headers(contract: BaseModel) -> Headers:
    """A header contract's fields as Kafka headers: alias names, UTF-8 string values, None left out."""
    values = contract.model_dump(by_alias=True, mode="json", exclude_none=True)
    return [(name, str(value).encode()) for name, value in values.items()]


def from_headers(model: type[Contract], headers: Headers) -> Contract:
    """The contract `model` read back from Kafka headers; headers it does not name are ignored.

    Raises pydantic's ValidationError when a field is missing or malformed.
    """
    names = {info.alias or name for name, info in model.model_fields.items()}
    return model.model_validate({name: value.decode(errors="replace") for name, value in headers if name in names})


def header_name(model: type[BaseModel], field_name: str) -> str:
    """The Kafka header name of one contract field."""
    return model.model_fields[field_name].alias or field_name


@dataclass(frozen=True)
class Record:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Headers = field(default_factory=list)

    @property
    def partition_key(self) -> PartitionKey:
        return (self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header `name`, or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class Committed:
    """A partition's committed position as the group coordinator has it."""

    offset: int  # -1: none yet
    metadata: str  # what the last commit wrote with it
    end: int | None  # the partition's end offset, when a fetch has told it
