"""One isolated Faceguard deployment on the shared broker: its own topics and group,
workers run as `faceguard worker` subprocesses, exactly as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consumer.config import Settings
from consumer.kafka.admin import TopicState, create_topics
from consumer.kafka.clients import OutputReader, publish
from consumer.records import Headers, OutgoingRecord, Record
from tests.support import BIN


@dataclass
class Outputs:
    """Everything the stack's workers published, by request id."""

    masked: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    metadata: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[Record] = field(default_factory=list)

    def finished(self) -> set[str]:
        """Request ids with both outputs, plus dead-lettered keys."""
        done = set(self.masked) & set(self.metadata)
        return done | {(r.key or b"").decode() for r in self.dead_letters}


class Stack:
    def __init__(
        self, bootstrap: str, workdir: Path, partitions: int, allowed_roots: list[Path], env: dict[str, str]
    ) -> None:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FACEGUARD_GROUP_ID": f"{prefix}-group",
            "FACEGUARD_TOPIC_REQUESTS": f"{prefix}.requests",
            "FACEGUARD_TOPIC_MASKED": f"{prefix}.masked-images",
            "FACEGUARD_TOPIC_METADATA": f"{prefix}.metadata",
            "FACEGUARD_TOPIC_DLQ": f"{prefix}.dlq",
            "FACEGUARD_ALLOWED_ROOTS": os.pathsep.join(str(r) for r in allowed_roots),
            # The tests' image servers listen on loopback, which references may not reach by default.
            "FACEGUARD_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
            # Masked photos of ../shared/data/large outgrow a record; they go to a folder (claim check).
            "FACEGUARD_OUTPUT_STORE": (workdir / "masked-store").as_uri(),
            **env,
        }
        self.settings = settings_from(self.env)
        create_service_topics(self.settings, partitions)
        self._outputs = Outputs()
        self._reader: OutputReader | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "faceguard"), *args], env={**self.env, **env}, capture_output=True, text=True, timeout=120
        )

    def submit(self, *targets: str | Path) -> list[str]:
        """Publish requests with `faceguard submit`; returns their request ids in order."""
        done = self.cli("submit", *map(str, targets))
        assert done.returncode == 0, done.stderr
        return [line.split("\t")[0] for line in done.stdout.splitlines()]

    def produce_raw(self, values: list[bytes], headers: Headers | None = None) -> None:
        records = [
            OutgoingRecord(self.settings.topic_requests, f"raw-{i}".encode(), v, headers or [])
            for i, v in enumerate(values)
        ]
        assert publish(self.settings.kafka_client_config(), self.settings.producer_options, records) == [None] * len(
            values
        )

    def start_worker(self, worker_id: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        """Start `faceguard worker`. A restart passes the same `worker_id`, as a restarted pod keeps its name:
        its transactional id then fences (and aborts the open transaction of) the killed one at once."""
        return self.start_worker_command([str(BIN / "faceguard"), "worker"], worker_id, **env)

    def start_worker_command(
        self, command: list[str], worker_id: str | None = None, **env: str
    ) -> subprocess.Popen[bytes]:
        """Start a worker with a command of the test's own (another installation, a namespace)."""
        log = (self.workdir / f"worker-{len(self.workers)}.log").open("wb")
        worker = subprocess.Popen(
            command,
            env={
                **self.env,
                "FACEGUARD_WORKER_ID": worker_id or f"w{len(self.workers)}",
                "FACEGUARD_PROBE_PORT": str(free_port()),  # workers side by side each serve their own probes
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(worker)
        return worker

    def worker_log_lines(self, index: int = -1) -> list[dict[str, object]]:
        """The worker's log, one JSON object per line (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.worker_log(index).splitlines() if line.strip()]

    def worker_log(self, index: int = -1) -> str:
        index = index % len(self.workers)
        return (self.workdir / f"worker-{index}.log").read_text(errors="replace")

    def outputs(self, until_finished: set[str] | int | Callable[[Outputs], bool], timeout_s: float = 90.0) -> Outputs:
        """Read outputs until the given request ids (or this many, or a condition) are finished, or time runs out."""
        if self._reader is None:
            client, topics = self.settings.kafka_client_config(), self.settings.topics.outputs
            self._reader = OutputReader(client, topics, f"reader-{uuid.uuid4().hex}")
        deadline = time.monotonic() + timeout_s

        def satisfied() -> bool:
            if callable(until_finished):
                return until_finished(self._outputs)
            done = self._outputs.finished()
            return until_finished <= done if isinstance(until_finished, set) else len(done) >= until_finished

        while not satisfied() and time.monotonic() < deadline:
            for record in self._reader.poll_batch(200, 0.1):
                key = (record.key or b"").decode()
                if record.topic == self.settings.topic_masked:
                    self._outputs.masked[key].append(record)
                elif record.topic == self.settings.topic_metadata:
                    self._outputs.metadata[key].append(record)
                else:
                    self._outputs.dead_letters.append(record)
        return self._outputs

    def settle(self, seconds: float) -> Outputs:
        """Read whatever else arrives within `seconds` (to catch duplicates)."""
        return self.outputs(until_finished=10**9, timeout_s=seconds)

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
        if self._reader is not None:
            self._reader.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_service_topics(settings: Settings, partitions: int) -> dict[str, TopicState]:
    """The service's topics as `faceguard topics create` makes them, with one replica."""
    client = settings.kafka_client_config()
    return create_topics(client, settings.topics, partitions, 1, settings.max_record_bytes)


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a worker started with `env` reads."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
