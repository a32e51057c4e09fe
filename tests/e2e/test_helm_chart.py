"""The Helm chart, checked by real tools and by assertions on what it renders.

`helm lint --strict` and `helm template` (helm built from the Go module proxy) run on every
install scenario in helm/faceguard/ci/; kubeconform validates each rendered manifest against the
Kubernetes, KEDA and Prometheus-operator schemas that ops/k8s_schemas.py wrote offline. The
template tests read the rendered YAML: security context, probes, autoscaler, secret wiring, and
that the chart's environment names real settings with values the worker accepts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from consumer.config import Guarantee, Settings
from consumer.detection.strategy import Preset
from consumer.observability.logs import LogFormat
from schemas import MaskMethod, MaskShape
from tests.integration.stack import settings_from
from tests.support import REPO, go_tool

sys.path.insert(0, str(REPO / "ops"))
import k8s_schemas

CHART = REPO / "helm" / "faceguard"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES_VERSION = "1.34.0"  # the schemas' version (ops/k8s_schemas.py)
Manifest = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([go_tool("helm"), *args], capture_output=True, text=True, timeout=120)


def template(*sets: str, values: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart as release "fg" in namespace "media", with these values."""
    args = ["template", "fg", str(CHART), "--namespace", "media", "--kube-version", KUBERNETES_VERSION]
    args += ["-f", str(values)] if values else []
    for assignment in sets:
        args += ["--set", assignment]
    return helm(*args)


def render_text(*sets: str, values: Path | None = None) -> str:
    done = template(*sets, values=values)
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(*sets: str, values: Path | None = None) -> dict[str, Manifest]:
    """Rendered manifests by "Kind/name"."""
    documents = [d for d in yaml.safe_load_all(render_text(*sets, values=values)) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def render_fails(*sets: str) -> str:
    done = template(*sets)
    assert done.returncode != 0, "the chart rendered values it should refuse"
    return done.stderr


@pytest.fixture(scope="module")
def schemas() -> Path:
    return k8s_schemas.write(k8s_schemas.DEFAULT_DEST)


def kubeconform(manifests: str, schemas: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            go_tool("kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-schema-location",
            str(schemas / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def worker(manifests: dict[str, Manifest]) -> Manifest:
    container: Manifest = manifests["Deployment/fg-faceguard"]["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(container: Manifest) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container.get("env", [])}


# Real tools on every scenario.


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_helm_lint_strict(scenario: Path) -> None:
    done = helm("lint", "--strict", str(CHART), "-f", str(scenario), "--kube-version", KUBERNETES_VERSION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_rendered_manifests_match_the_kubernetes_keda_and_operator_schemas(scenario: Path, schemas: Path) -> None:
    report = kubeconform(render_text(values=scenario), schemas)
    summary = report["summary"]
    assert report["returncode"] == 0, report["resources"]
    assert summary["valid"] >= 4
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0


def test_kubeconform_rejects_misspelt_fields_and_wrong_types(schemas: Path) -> None:
    """The schemas are strict, for Kubernetes kinds and the custom resources alike: the checks above can fail."""
    manifests = render_text("securityContext.readOnlyRootFilesytem=true", "podSecurityContext.runAsUser=nobody")
    report = kubeconform(manifests, schemas)
    assert report["returncode"] == 1
    messages = " ".join(r["msg"] for r in report["resources"])
    assert "readOnlyRootFilesytem" in messages
    assert "runAsUser" in messages
    monitoring = render_text(values=CHART / "ci" / "monitoring-values.yaml")
    broken = monitoring.replace("pollingInterval: 15", "pollingInterval: fifteen").replace(
        "interval: 30s", "intervall: 30s"
    )
    report = kubeconform(broken, schemas)
    invalid = {r["kind"]: r["msg"] for r in report["resources"] if r["status"] == "statusInvalid"}
    assert set(invalid) == {"ScaledObject", "ServiceMonitor"}
    assert "pollingInterval" in invalid["ScaledObject"]
    assert "intervall" in invalid["ServiceMonitor"]


def test_values_are_checked_against_the_values_schema() -> None:
    assert "presett" in render_fails("worker.presett=fast")
    assert "/worker/preset" in render_fails("worker.preset=fast-ish")
    assert "bootstrapServers" in render_fails("kafka.bootstrapServers=kafka")


def test_values_schema_offers_the_choices_the_worker_knows() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]
    worker_values = schema["worker"]["properties"]
    assert worker_values["preset"]["enum"] == [p.value for p in Preset]
    assert worker_values["guarantee"]["enum"] == [g.value for g in Guarantee]
    assert worker_values["maskMethod"]["enum"] == [m.value for m in MaskMethod]
    assert worker_values["maskShape"]["enum"] == [m.value for m in MaskShape]
    assert worker_values["logFormat"]["enum"] == [f.value for f in LogFormat]
    protocols = schema["kafka"]["properties"]["securityProtocol"]["enum"]
    assert protocols == list(get_args(Settings.model_fields["kafka_security_protocol"].annotation))


# Template assertions.


def test_workers_run_unprivileged_with_a_read_only_root_and_a_writable_tmp() -> None:
    manifests = render()
    pod = manifests["Deployment/fg-faceguard"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    [tmp] = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == "256Mi"


def test_probes_ask_the_workers_probe_port_and_the_drain_fits_the_grace_period() -> None:
    manifests = render("worker.drainTimeoutSeconds=50")
    container = worker(manifests)
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    [port] = container["ports"]
    assert port == {"name": "metrics", "containerPort": 9400, "protocol": "TCP"}
    assert config["FACEGUARD_PROBE_PORT"] == "9400"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    pod = manifests["Deployment/fg-faceguard"]["spec"]["template"]["spec"]
    assert config["FACEGUARD_DRAIN_TIMEOUT_S"] == "50"
    assert pod["terminationGracePeriodSeconds"] > 50
    service = manifests["Service/fg-faceguard"]["spec"]
    assert service["ports"][0]["targetPort"] == "metrics"


def test_resources_come_from_the_benchmark_sizing() -> None:
    manifests = render()
    container = worker(manifests)
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "768Mi"}, "limits": {"memory": "1Gi"}}
    assert config["FACEGUARD_PROCESSING_THREADS"] == "2"


def test_every_variable_of_the_chart_names_a_setting_the_worker_accepts() -> None:
    """A misspelt FACEGUARD_ name would be ignored silently by the worker: the chart's names must be fields."""
    fields = {f"FACEGUARD_{name.upper()}" for name in Settings.model_fields}
    for scenario in SCENARIOS:
        manifests = render(values=scenario)
        config: dict[str, str] = manifests["ConfigMap/fg-faceguard"]["data"]
        names = set(config) | set(env_of(worker(manifests)))
        unknown = {n for n in names if n.startswith("FACEGUARD_")} - fields
        assert unknown == set(), scenario.name
        settings = settings_from({**config, "FACEGUARD_KAFKA_SASL_PASSWORD": "x"})
        assert settings.topic_requests == "faceguard.requests"
        assert settings.retry_delays_s == [10.0, 60.0, 600.0]


def test_keda_scales_on_the_lag_of_the_workers_group_and_topic() -> None:
    manifests = render()
    scaled = manifests["ScaledObject/fg-faceguard"]["spec"]
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == config["FACEGUARD_GROUP_ID"]
    assert trigger["metadata"]["topic"] == config["FACEGUARD_TOPIC_REQUESTS"]
    assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert scaled["maxReplicaCount"] <= 6
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "replicas" not in manifests["Deployment/fg-faceguard"]["spec"], "the autoscaler owns the count"
    assert "HorizontalPodAutoscaler/fg-faceguard" not in manifests


def test_keda_backlog_trigger_and_kafka_credentials() -> None:
    manifests = render(values=CHART / "ci" / "keda-sasl-tls-values.yaml")
    scaled = manifests["ScaledObject/fg-faceguard"]["spec"]
    kafka, backlog = scaled["triggers"]
    assert kafka["metadata"]["sasl"] == "scram_sha512"
    assert kafka["metadata"]["tls"] == "enable"
    assert kafka["authenticationRef"]["name"] == "fg-faceguard-kafka"
    assert backlog["type"] == "prometheus"
    assert 'faceguard_backlog_seconds{namespace="media", job="fg-faceguard"}' in backlog["metadata"]["query"]
    auth = manifests["TriggerAuthentication/fg-faceguard-kafka"]["spec"]["secretTargetRef"]
    assert {(r["parameter"], r["name"], r["key"]) for r in auth} == {
        ("username", "faceguard-kafka-user", "username"),
        ("password", "faceguard-kafka-user", "password"),
        ("ca", "faceguard-kafka-tls", "ca.crt"),
        ("cert", "faceguard-kafka-tls", "tls.crt"),
        ("key", "faceguard-kafka-tls", "tls.key"),
    }
    assert scaled["minReplicaCount"] == 0


def test_existing_secrets_are_referenced_and_none_is_created() -> None:
    manifests = render(values=CHART / "ci" / "keda-sasl-tls-values.yaml")
    assert [name for name in manifests if name.startswith("Secret/")] == []
    container = worker(manifests)
    env = env_of(container)
    assert env["FACEGUARD_KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "faceguard-kafka-user", "key": "username"}}
    assert env["FACEGUARD_KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "faceguard-kafka-user", "key": "password"}}
    assert "AWS_ACCESS_KEY_ID" not in env, "workload identity, no keys"
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-tls")
    assert mount["readOnly"] is True
    assert config["FACEGUARD_KAFKA_SSL_CA_LOCATION"] == f"{mount['mountPath']}/ca.crt"
    assert config["FACEGUARD_KAFKA_SSL_KEY_LOCATION"] == f"{mount['mountPath']}/tls.key"
    pod = manifests["Deployment/fg-faceguard"]["spec"]["template"]["spec"]
    [tls] = [v for v in pod["volumes"] if v["name"] == "kafka-tls"]
    assert tls["secret"]["secretName"] == "faceguard-kafka-tls"


def test_chart_managed_credentials_go_into_secrets_not_the_configmap() -> None:
    manifests = render(values=CHART / "ci" / "hpa-values.yaml")
    s3 = manifests["Secret/fg-faceguard-s3"]["stringData"]
    assert s3 == {"AWS_ACCESS_KEY_ID": "faceguard", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret"}
    env = env_of(worker(manifests))
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "fg-faceguard-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    assert "not-a-real-secret" not in json.dumps(config)
    assert config["FACEGUARD_S3_PATH_STYLE"] == "true"
    assert config["FACEGUARD_MAX_IN_FLIGHT"] == "128"
    annotations = manifests["Deployment/fg-faceguard"]["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(annotations)


def test_hpa_mode_scales_on_cpu_without_keda() -> None:
    manifests = render(values=CHART / "ci" / "hpa-values.yaml")
    assert "ScaledObject/fg-faceguard" not in manifests
    hpa = manifests["HorizontalPodAutoscaler/fg-faceguard"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_static_mode_sets_the_replica_count() -> None:
    manifests = render(values=CHART / "ci" / "static-values.yaml")
    assert manifests["Deployment/fg-faceguard"]["spec"]["replicas"] == 3
    assert not [name for name in manifests if name.split("/")[0] in {"ScaledObject", "HorizontalPodAutoscaler"}]


def test_the_chart_refuses_more_workers_than_partitions_and_half_set_credentials() -> None:
    assert "exceeds topics.partitions" in render_fails("autoscaling.maxReplicas=12")
    assert "kafka.sasl.existingSecret" in render_fails("kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN")
    assert "SASL_SSL or SASL_PLAINTEXT" in render_fails(
        "kafka.sasl.mechanism=PLAIN", "kafka.sasl.existingSecret=s", "kafka.securityProtocol=SSL"
    )


def test_monitoring_objects_carry_the_checked_rules_and_dashboard() -> None:
    manifests = render(values=CHART / "ci" / "monitoring-values.yaml")
    rules = manifests["PrometheusRule/fg-faceguard"]["spec"]
    assert rules == yaml.safe_load((REPO / "ops" / "monitoring" / "alerts.yml").read_text())
    dashboard = manifests["ConfigMap/fg-faceguard-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["faceguard.json"]) == json.loads(
        (REPO / "ops" / "monitoring" / "dashboard.json").read_text()
    )
    monitor = manifests["ServiceMonitor/fg-faceguard"]["spec"]
    assert monitor["endpoints"][0]["port"] == "metrics"
    assert monitor["selector"]["matchLabels"] == manifests["Service/fg-faceguard"]["spec"]["selector"]


def test_network_policy_allows_only_dns_brokers_store_and_extra_egress() -> None:
    policy = render(values=CHART / "ci" / "monitoring-values.yaml")["NetworkPolicy/fg-faceguard"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [{"podSelector": {}}]}]
    cidrs = [[peer["ipBlock"]["cidr"] for peer in rule.get("to", [])] for rule in policy["egress"]]
    assert cidrs == [[], ["10.20.0.0/16"], ["10.30.0.0/16"], ["10.40.0.0/16"]]
    assert policy["egress"][0]["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def test_topics_job_runs_before_the_workers_with_the_workers_configuration() -> None:
    manifests = render(values=CHART / "ci" / "monitoring-values.yaml")
    job = manifests["Job/fg-faceguard-topics"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["topics", "create", "--partitions", "6", "--replication-factor", "3"]
    env = env_of(container)
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    assert {k: v for k, v in env.items() if isinstance(v, str)} == config
    assert env["FACEGUARD_KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "fg-faceguard-topics", "key": "password"}}
    hook_secret = manifests["Secret/fg-faceguard-topics"]
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"
    assert hook_secret["stringData"] == manifests["Secret/fg-faceguard-kafka-sasl"]["stringData"]
    assert hook_secret["stringData"]["password"] == "not-a-real-password"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_http_mode_runs_serve_behind_a_service_an_ingress_and_a_cpu_autoscaler() -> None:
    manifests = render(values=CHART / "ci" / "http-values.yaml")
    container = worker(manifests)
    config = manifests["ConfigMap/fg-faceguard"]["data"]
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    settings = settings_from({**config, "FACEGUARD_JWT_HS256_SECRET": "x"})
    assert (settings.http_host, settings.http_port, settings.http_auth.value) == ("0.0.0.0", 8080, "jwt")
    assert settings.jwt_jwks_file is not None
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(settings.jwt_jwks_file).startswith(mounts["jwt-keys"])
    secret = {e["name"]: e["valueFrom"].get("secretKeyRef") for e in container["env"] if "valueFrom" in e}
    assert secret["FACEGUARD_JWT_HS256_SECRET"] == {"name": "faceguard-jwt", "key": "hs256-secret"}
    service = manifests["Service/fg-faceguard"]["spec"]["ports"][0]
    assert (service["port"], service["targetPort"]) == (8080, "http")
    rule = manifests["Ingress/fg-faceguard"]["spec"]["rules"][0]
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}
    assert manifests["HorizontalPodAutoscaler/fg-faceguard"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert manifests["ServiceMonitor/fg-faceguard"]["spec"]["endpoints"][0]["port"] == "http"
    assert manifests["NetworkPolicy/fg-faceguard"]["spec"]["ingress"][0]["ports"][0]["port"] == "http"
    pod = manifests["Deployment/fg-faceguard"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.http_drain_timeout_s


def test_http_mode_refuses_an_open_api_and_the_lag_autoscaler() -> None:
    assert "http.allowPublic" in render_fails("mode=http", "http.auth=off", "autoscaling.mode=hpa")
    assert "http.jwt.existingSecret" in render_fails("mode=http", "autoscaling.mode=hpa")
    assert "scales on CPU" in render_fails("mode=http", "http.jwt.existingSecret=s")
    opened = render("mode=http", "http.auth=off", "http.allowPublic=true", "autoscaling.mode=none")
    assert opened["ConfigMap/fg-faceguard"]["data"]["FACEGUARD_HTTP_ALLOW_PUBLIC"] == "true"
