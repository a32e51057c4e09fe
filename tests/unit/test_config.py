from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumer.config import Settings
from consumer.detection.strategy import Preset
from consumer.kafka.producers import transactional_config


def test_environment_is_read_with_the_prefix_and_the_conventional_broker_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    monkeypatch.setenv("FACEGUARD_PRESET", "thorough")
    monkeypatch.setenv("FACEGUARD_ALLOWED_ROOTS", f"{tmp_path}{os.pathsep}{tmp_path / 'x'}")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "b1:9092,b2:9092"
    assert settings.preset is Preset.THOROUGH
    assert settings.allowed_roots == [tmp_path.resolve(), (tmp_path / "x").resolve()]


def test_the_default_preset_is_balanced_and_no_file_root_is_open() -> None:
    settings = Settings()
    assert settings.preset is Preset.BALANCED
    assert settings.allowed_roots == []


def test_secrets_reach_librdkafka_but_not_the_repr() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("hunter2"),
    )
    assert settings.kafka_client_config()["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(settings)


def test_mutual_tls_files_reach_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Helm chart mounts the TLS secret and points these variables at its files."""
    monkeypatch.setenv("FACEGUARD_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("FACEGUARD_KAFKA_SSL_CA_LOCATION", "/etc/faceguard/kafka-tls/ca.crt")
    monkeypatch.setenv("FACEGUARD_KAFKA_SSL_CERTIFICATE_LOCATION", "/etc/faceguard/kafka-tls/tls.crt")
    monkeypatch.setenv("FACEGUARD_KAFKA_SSL_KEY_LOCATION", "/etc/faceguard/kafka-tls/tls.key")
    config = Settings().kafka_client_config()
    assert config["security.protocol"] == "SSL"
    assert config["ssl.ca.location"] == "/etc/faceguard/kafka-tls/ca.crt"
    assert config["ssl.certificate.location"] == "/etc/faceguard/kafka-tls/tls.crt"
    assert config["ssl.key.location"] == "/etc/faceguard/kafka-tls/tls.key"


def test_the_transactional_producer_retries_a_refused_transaction_soon() -> None:
    """librdkafka's 100-ms default made back-to-back commits take 100 ms each (ops/bench_transactions.py)."""
    settings = Settings()
    config = transactional_config(
        settings.kafka_client_config(), settings.producer_options, settings.transaction_options
    )
    assert config["retry.backoff.ms"] <= 20
    assert config["retry.backoff.max.ms"] >= 1000  # a broker that keeps refusing is still backed off from
    assert config["transactional.id"] == Settings().transactional_id
