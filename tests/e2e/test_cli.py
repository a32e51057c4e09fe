"""The `faceguard` and broker commands, driven as a user drives them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.detection.model_files import DEFAULT_MODELS_DIR, MODEL_FILES, ModelKind
from tests.images import ASTRONAUT_FACE, ASTRONAUT_MOST_BOXES
from tests.support import BIN, REPO, SAMPLES, decode, iou, region_change

KAFKA_LOCAL = str(REPO / "ops" / "kafka_local.py")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


def test_anonymize_masks_local_files_and_writes_metadata(tmp_path: Path) -> None:
    done = run(str(BIN / "faceguard"), "anonymize", str(SAMPLES), "-o", str(tmp_path), "--metadata")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "astronaut.png",
        "astronaut.png.json",
        "chelsea.png",
        "chelsea.png.json",
        "coffee.png",
        "coffee.png.json",
    ]
    event = json.loads((tmp_path / "astronaut.png.json").read_text())
    # The most confident box is the face; the others, if any, are patches of the suit.
    assert 1 <= event["total_count"] <= ASTRONAUT_MOST_BOXES
    assert event["model"]["name"] == "blazeface-full-range-sparse+blazeface-short-range"
    assert event["model"]["preset"] == "balanced"
    assert iou(tuple(event["faces"][0]["bbox"]), ASTRONAUT_FACE) > 0.6
    before = decode((SAMPLES / "astronaut.png").read_bytes())
    after = decode((tmp_path / "astronaut.png").read_bytes())
    diff, detail_left = region_change(before, after, ASTRONAUT_FACE)
    assert diff > 10
    assert detail_left < 0.2


def test_anonymize_reports_a_bad_file_and_carries_on(tmp_path: Path) -> None:
    bad = tmp_path / "in" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    done = run(str(BIN / "faceguard"), "anonymize", str(bad), str(SAMPLES / "astronaut.png"), "-o", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "broken.png" in done.stderr
    assert "cannot be decoded" in done.stderr
    assert (tmp_path / "o" / "astronaut.png").exists()


def test_worker_refuses_to_start_with_an_altered_model(tmp_path: Path) -> None:
    for model in MODEL_FILES.values():
        (tmp_path / model.filename).write_bytes((DEFAULT_MODELS_DIR / model.filename).read_bytes())
    full = tmp_path / MODEL_FILES[ModelKind.FULL_RANGE].filename
    altered = bytearray(full.read_bytes())
    altered[len(altered) // 2] ^= 0xFF
    full.write_bytes(bytes(altered))
    done = run(str(BIN / "faceguard"), "worker", env={"FACEGUARD_MODELS_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "sha256" in done.stderr
    assert "make models" in done.stderr


def test_broker_script_fails_clearly_without_java(tmp_path: Path) -> None:
    done = run(sys.executable, KAFKA_LOCAL, "start", "--data", str(tmp_path), env={"PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "java was not found on PATH" in done.stderr


@pytest.mark.kafka
def test_broker_script_restarts_with_its_topics(tmp_path: Path) -> None:
    started = run(sys.executable, KAFKA_LOCAL, "start", "--data", str(tmp_path), "--port", "0")
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("kept", 2, 1)])["kept"].result(timeout=30)
        assert run(sys.executable, KAFKA_LOCAL, "stop", "--data", str(tmp_path)).returncode == 0
        assert run(sys.executable, KAFKA_LOCAL, "status", "--data", str(tmp_path)).stdout.strip() == "stopped"
        again = run(sys.executable, KAFKA_LOCAL, "start", "--data", str(tmp_path))
        assert again.returncode == 0
        assert again.stdout.strip() == bootstrap
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
        assert "kept" in topics
        assert len(topics["kept"].partitions) == 2
    finally:
        run(sys.executable, KAFKA_LOCAL, "stop", "--data", str(tmp_path))


def test_broker_storage_formats_with_a_cluster_id_that_starts_with_a_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One id in 64 starts with "-"; passed as a separate argument, Kafka's tool read it as an option."""
    monkeypatch.syspath_prepend(str(REPO / "ops"))
    import kafka_local

    broker = kafka_local.Broker(tmp_path)
    kafka_local.write_config(broker, kafka_local.free_port())
    encode = base64.urlsafe_b64encode
    monkeypatch.setattr(base64, "urlsafe_b64encode", lambda raw: b"-" + encode(raw)[1:])
    kafka_local.format_storage(broker)
    assert "cluster.id=-" in (broker.storage / "meta.properties").read_text()


def test_eval_reports_masked_faces_on_a_fixed_subset_above_the_regression_floor() -> None:
    """A regression guard on the first 40 wider-val photos, not the recall goal. Measured with the
    default (balanced) preset: 62.7% masked, 70.7% of faces 16-32 px, 92.6% 32-64 px, 98.3% 64-128 px,
    21 of the 22 above 128 px; 496 of 765 detections matching no face (its 160-px full-size windows
    find more faces and more textures: 400 of 669 on 128-px tiles). The fast preset (whole-image
    full-range at 0.5) masks 12.0% of the same faces."""
    done = run(str(BIN / "faceguard"), "eval", "--limit", "40", "--json")
    assert done.returncode == 0, done.stderr
    assert "masked share" in done.stdout
    [summary] = json.loads(done.stdout.splitlines()[-1]).values()
    assert summary["images"] == 40
    assert summary["masked_share"] >= 0.54
    assert summary["masked_share_by_height"]["16-32"] >= 0.62
    assert summary["masked_share_by_height"]["32-64"] >= 0.85
    assert summary["masked_share_by_height"]["64-128"] >= 0.94
    assert summary["masked_share_by_height"][">128"] >= 0.90
    assert summary["unmatched_share"] <= 0.67
