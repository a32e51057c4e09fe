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
from tests.images import ASTRONAUT_FACE
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
    # The verifier keeps the face and drops the patches of the suit the detector proposed.
    assert event["total_count"] == 1
    models = "blazeface-full-range-sparse+blazeface-short-range+facemesh+selfie-segmentation"
    assert event["model"]["name"].startswith(f"{models}+verifier-")
    assert event["model"]["preset"] == "balanced"
    assert event["faces"][0]["verification"] > 0.9
    assert json.loads((tmp_path / "chelsea.png.json").read_text())["total_count"] == 0  # the cat
    assert iou(tuple(event["faces"][0]["bbox"]), ASTRONAUT_FACE) > 0.6
    before = decode((SAMPLES / "astronaut.png").read_bytes())
    after = decode((tmp_path / "astronaut.png").read_bytes())
    diff, detail_left = region_change(before, after, ASTRONAUT_FACE)
    assert diff > 10
    assert detail_left < 0.2


def test_anonymize_preview_draws_kept_and_rejected_candidates_and_masks_nothing(tmp_path: Path) -> None:
    done = run(str(BIN / "faceguard"), "anonymize", str(SAMPLES / "astronaut.png"), "-o", str(tmp_path), "--preview")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "astronaut.preview.png")
    before = decode((SAMPLES / "astronaut.png").read_bytes())
    after = decode((tmp_path / "astronaut.preview.png").read_bytes())
    x, y, w, h = ASTRONAUT_FACE
    assert (
        after[y + h // 3 : y + 2 * h // 3, x + w // 3 : x + 2 * w // 3]
        == before[y + h // 3 : y + 2 * h // 3, x + w // 3 : x + 2 * w // 3]
    ).all()
    changed = (after != before).any(axis=2)
    green = (after[:, :, 1] > 150) & (after[:, :, 0] < 60) & (after[:, :, 2] < 60) & changed
    red = (after[:, :, 2] > 150) & (after[:, :, 0] < 60) & (after[:, :, 1] < 60) & changed
    assert green[y - 20 : y + h + 5, x - 5 : x + w + 5].sum() > 100  # the face's box
    assert red.sum() > 50  # what the verifier rejected


def test_anonymize_takes_a_preset(tmp_path: Path) -> None:
    done = run(
        str(BIN / "faceguard"),
        "anonymize",
        str(SAMPLES / "astronaut.png"),
        "-o",
        str(tmp_path),
        "--metadata",
        "--preset",
        "fast",
    )
    assert done.returncode == 0, done.stderr
    event = json.loads((tmp_path / "astronaut.png.json").read_text())
    assert event["model"]["preset"] == "fast"
    assert event["faces"][0]["verification"] is None  # fast runs no verifier


def test_anonymize_reports_a_bad_file_and_carries_on(tmp_path: Path) -> None:
    bad = tmp_path / "in" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    done = run(str(BIN / "faceguard"), "anonymize", str(bad), str(SAMPLES / "astronaut.png"), "-o", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "broken.png" in done.stderr
    assert "cannot be decoded" in done.stderr
    assert (tmp_path / "o" / "astronaut.png").exists()


def test_submit_names_a_reference_it_cannot_send_and_publishes_nothing(tmp_path: Path) -> None:
    """Checked before any broker is asked (none listens here): one line naming the target, exit 2."""
    nobody = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    for targets, said in (
        ([str(SAMPLES / "astronaut.png"), "ftp://host/photo.jpg"], "ftp://host/photo.jpg: image_ref must be a file://"),
        ([str(SAMPLES / "astronaut.png"), str(tmp_path / "missing.jpg")], f"{tmp_path / 'missing.jpg'} does not exist"),
    ):
        done = run(str(BIN / "faceguard"), "submit", *targets, env=nobody)
        assert done.returncode == 2
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"faceguard submit: error: {said}"), line
        assert done.stdout == ""


def test_dlq_commands_without_a_broker_say_so_in_one_line() -> None:
    """Before, `dlq list` logged librdkafka's connection failures line by line, then its own error."""
    nobody = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    for command in (["dlq", "list"], ["dlq", "redrive", "--dry-run"]):
        done = run(str(BIN / "faceguard"), *command, env=nobody)
        assert done.returncode == 1
        [line] = done.stderr.strip().splitlines()
        assert json.loads(line)["message"].startswith("cannot reach Kafka at 127.0.0.1:9"), line
        assert done.stdout == ""


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
    default (balanced) preset and its verifier: 49.1% masked, 60.2% of faces 16-32 px, 60.0% 32-64 px,
    87.9% 64-128 px, 21 of the 22 above 128 px; 127 of 360 detections matching no face (before the
    verifier: 62.7% masked, 496 of 765 matching no face). docs/detection.md has the whole sets."""
    done = run(str(BIN / "faceguard"), "eval", "--limit", "40", "--json")
    assert done.returncode == 0, done.stderr
    assert "masked share" in done.stdout
    [summary] = json.loads(done.stdout.splitlines()[-1])["faces"].values()
    assert summary["images"] == 40
    assert summary["masked_share"] >= 0.47
    assert summary["masked_share_by_height"]["16-32"] >= 0.57
    assert summary["masked_share_by_height"]["32-64"] >= 0.57
    assert summary["masked_share_by_height"]["64-128"] >= 0.85
    assert summary["masked_share_by_height"][">128"] >= 0.90
    assert summary["unmatched_share"] <= 0.38


def test_eval_measures_a_users_own_annotations_and_names_what_it_cannot_read(tmp_path: Path) -> None:
    """A file of the user's own: the images beside it, only their faces given. Before, `--subset` defaulted
    to WIDER's and such a file gave an empty table with exit 0; a bad line gave a traceback."""
    (tmp_path / "astronaut.png").write_bytes((SAMPLES / "astronaut.png").read_bytes())
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"image": "astronaut.png", "faces": [list(ASTRONAUT_FACE)]}) + "\n")
    done = run(str(BIN / "faceguard"), "eval", "--annotations", str(mine), "--preset", "fast", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{mine}: 1 photo (all)")
    [summary] = json.loads(done.stdout.splitlines()[-1])[str(mine)].values()
    assert (summary["images"], summary["faces"], summary["masked_share"]) == (1, 1, 1.0)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(mine.read_text() + '{"image": "astronaut.png", "faces": [[10, 20, 30]]}\n')
    cases = {
        ("--annotations", str(bad)): f"{bad} line 2: a face is [x, y, w, h] in pixels, not [10, 20, 30]",
        ("--annotations", str(tmp_path / "none.jsonl")): f"--annotations {tmp_path / 'none.jsonl'}: no such file",
        ("--annotations", str(mine), "--subset", "wider-val"): f"{mine} annotates no image of subset 'wider-val'",
        ("--annotations", str(mine), "--suite", "faces"): "--annotations measures your file instead of a suite:"
        " give one or the other",
    }
    for args, reason in cases.items():
        done = run(str(BIN / "faceguard"), "eval", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip().splitlines() == [f"faceguard eval: error: {reason}"]
        assert done.stdout == ""


def test_eval_builds_the_walls_of_faces_measures_them_and_leaves_no_file(tmp_path: Path) -> None:
    """`--suite walls` makes its five walls (faces 16 to 36 px) in a temporary folder and removes it after."""
    done = run(str(BIN / "faceguard"), "eval", "--suite", "walls", "--json", env={"TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    [summary] = json.loads(done.stdout.splitlines()[-1])["walls"].values()
    assert summary["images"] == 5
    assert summary["faces"] == 1953
    assert summary["masked_share"] >= 0.89  # measured 91.3% with the default preset (before its sweep: 19.2%)
    assert list(tmp_path.iterdir()) == []
