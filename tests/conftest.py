"""Session fixtures: a real Kafka broker and a real S3-compatible server for the integration and end-to-end tests.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest

from tests.support import REPO

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    @property
    def env(self) -> dict[str, str]:
        """What a worker needs to reach it: the endpoint override and the standard AWS variables."""
        return {
            "FACEGUARD_S3_ENDPOINT_URL": self.endpoint,
            "FACEGUARD_S3_PATH_STYLE": "true",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def client(self) -> S3Client:
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        return client


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server: S3_ENDPOINT_URL (with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
    when set; a testcontainers MinIO when a Docker daemon answers; otherwise MinIO started by
    ops/s3_local.py on a free loopback port (stopped at the end)."""
    if endpoint := os.environ.get("S3_ENDPOINT_URL"):
        yield S3Server(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        return
    if docker_answers():
        from testcontainers.minio import MinioContainer

        with MinioContainer() as minio:
            config = minio.get_config()
            yield S3Server(f"http://{config['endpoint']}", config["access_key"], config["secret_key"])
        return
    data = tmp_path_factory.mktemp("s3")
    script = str(REPO / "ops" / "s3_local.py")
    env = {**os.environ, "S3_LOCAL_USER": "faceguard-tests", "S3_LOCAL_PASSWORD": "faceguard-tests-secret"}
    started = subprocess.run(
        [sys.executable, script, "start", "--data", str(data)], capture_output=True, text=True, check=False, env=env
    )
    assert started.returncode == 0, f"could not start the local S3 server:\n{started.stderr}"
    try:
        yield S3Server(started.stdout.strip(), env["S3_LOCAL_USER"], env["S3_LOCAL_PASSWORD"])
    finally:
        subprocess.run([sys.executable, script, "stop", "--data", str(data)], capture_output=True, check=False)
