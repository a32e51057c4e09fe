"""The service's topics: what a worker reads, what it writes, and the retry tiers between."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Topic names, and the delay of each retry tier (tier N reads `<requests>.retry-N`)."""

    requests: str
    masked: str
    metadata: str
    dlq: str
    retry_delays_s: tuple[float, ...] = ()

    @property
    def retries(self) -> list[str]:
        """One topic per retry tier, in order."""
        return [f"{self.requests}.retry-{tier}" for tier in range(1, len(self.retry_delays_s) + 1)]

    @property
    def inputs(self) -> list[str]:
        """What a worker consumes: the requests topic and every retry tier."""
        return [self.requests, *self.retries]

    @property
    def outputs(self) -> list[str]:
        """What a worker publishes: masked images, metadata events and dead letters (retries are inputs)."""
        return [self.masked, self.metadata, self.dlq]

    @property
    def all(self) -> list[str]:
        """Every topic the service reads or writes."""
        return [*self.inputs, *self.outputs]
