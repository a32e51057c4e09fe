"""The dashboard and alert rules in ops/monitoring, checked by Prometheus's own promtool
(built by `make tools`): rules parse and their unit tests pass, every dashboard query parses,
and every metric they name is one the worker exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from consumer.observability.metrics import Metrics
from tests.support import REPO, go_tool

MONITORING = REPO / "ops" / "monitoring"
METRIC_NAME = re.compile(r"\bfaceguard_[a-z_]+")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([go_tool("promtool"), *args], capture_output=True, text=True, timeout=120, check=False)


SUFFIXES = {"counter": ("_total",), "histogram": ("", "_bucket", "_sum", "_count"), "info": ("_info",), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the worker's metrics can export, labelled or not."""
    return {f.name + suffix for f in Metrics().registry.collect() for suffix in SUFFIXES[f.type]}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_alert_rules_parse_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(MONITORING / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(MONITORING / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    concrete = [q.replace("$namespace", ".*") for q in queries]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": q} for i, q in enumerate(concrete)]}
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML, which promtool reads
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("source", ["alerts.yml", "dashboard.json"])
def test_every_metric_named_is_exported(source: str) -> None:
    named = set(METRIC_NAME.findall((MONITORING / source).read_text()))
    assert named
    assert named <= exported_names(), named - exported_names()
