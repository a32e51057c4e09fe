"""Session fixtures: a real Kafka broker for the integration and end-to-end tests.

The broker is, in order of preference: the one named by KAFKA_BOOTSTRAP_SERVERS;
a testcontainers Kafka when a Docker daemon answers; otherwise a local KRaft
broker started by ops/kafka_local.py on a free loopback port (stopped at the end).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import REPO


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    data = tmp_path_factory.mktemp("kafka")
    script = str(REPO / "ops" / "kafka_local.py")
    started = subprocess.run(
        [sys.executable, script, "start", "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, f"could not start the local broker:\n{started.stderr}"
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([sys.executable, script, "stop", "--data", str(data)], capture_output=True, check=False)
