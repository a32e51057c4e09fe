"""docker-compose.yml, checked without a Docker engine: Docker Compose's own `config` (built from the
Go module proxy) validates and resolves it, promtool checks the Prometheus configuration it mounts,
and its settings are compared with the local scripts' and the worker's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumer.config import Settings
from tests.integration.stack import settings_from
from tests.support import REPO, go_tool

sys.path.insert(0, str(REPO / "ops"))
import kafka_local

COMPOSE_FILE = REPO / "docker-compose.yml"


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [go_tool("docker-compose"), "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    done = compose_config(COMPOSE_FILE)
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = json.loads(done.stdout)
    return resolved


def test_compose_validates_and_has_the_six_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "topics", "worker", "api", "prometheus", "grafana"}


def test_the_api_serves_on_the_hosts_loopback_only(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    settings = settings_from(api["environment"])
    assert api["command"] == ["serve"]
    assert api["image"] == compose["services"]["worker"]["image"]
    [published] = api["ports"]
    assert published["host_ip"] == "127.0.0.1"
    assert int(published["target"]) == settings.http_port
    assert settings.http_allow_public  # it listens on the container's address; the host publishes loopback only
    assert int(api["stop_grace_period"][:-1]) > settings.http_drain_timeout_s


def test_compose_config_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("read_only: true", "readonly: true", 1))
    done = compose_config(broken)
    assert done.returncode != 0
    assert "readonly" in done.stderr


def test_broker_settings_are_those_of_the_local_broker(compose: dict[str, Any]) -> None:
    environment = compose["services"]["kafka"]["environment"]
    expected = {f"KAFKA_{key.upper().replace('.', '_')}": value for key, value in kafka_local.BROKER_SETTINGS.items()}
    assert {name: environment.get(name) for name in expected} == expected
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    pom = (REPO / "ops" / "kafka" / "pom.xml").read_text()
    version = compose["services"]["kafka"]["image"].split(":")[1]
    assert f"<kafka.version>{version}</kafka.version>" in pom


def test_worker_runs_as_on_kubernetes(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["read_only"] is True
    assert "/tmp" in worker["tmpfs"][0]
    assert worker["build"]["dockerfile"] == "Dockerfile"
    assert worker["stop_signal"] == "SIGTERM"
    drain = settings_from(worker["environment"]).drain_timeout_s
    grace = worker["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) > drain
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    [published] = worker["ports"]
    assert int(published["target"]) == settings_from(worker["environment"]).probe_port


def test_topics_and_names_match_the_workers_defaults(compose: dict[str, Any]) -> None:
    defaults = Settings()
    for service in ("worker", "topics"):
        settings = settings_from(compose["services"][service]["environment"])
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.topics.inputs == defaults.topics.inputs
        assert settings.topics.outputs == defaults.topics.outputs
        assert settings.group_id == defaults.group_id
    command = compose["services"]["topics"]["command"]
    assert command[:2] == ["topics", "create"]
    assert compose["services"]["topics"]["image"] == compose["services"]["worker"]["image"]


def test_prometheus_config_passes_promtool_and_scrapes_the_worker(compose: dict[str, Any]) -> None:
    monitoring = REPO / "ops" / "monitoring"
    done = subprocess.run(
        [go_tool("promtool"), "check", "config", str(monitoring / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout
    assert "worker:9400" in (monitoring / "prometheus.yml").read_text()
    mounts = {
        v["target"]: Path(v["source"]) for v in compose["services"]["prometheus"]["volumes"] if v["type"] == "bind"
    }
    assert mounts["/etc/prometheus/alerts.yml"] == monitoring / "alerts.yml"


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    mounts = {v["target"]: Path(v["source"]) for v in compose["services"]["grafana"]["volumes"] if v["type"] == "bind"}
    dashboard = mounts["/var/lib/grafana/dashboards/faceguard.json"]
    assert dashboard == REPO / "ops" / "monitoring" / "dashboard.json"
    assert json.loads(dashboard.read_text())["title"]
    provider = mounts["/etc/grafana/provisioning/dashboards/faceguard.yml"].read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    assert "url: http://prometheus:9090" in mounts["/etc/grafana/provisioning/datasources/faceguard.yml"].read_text()
