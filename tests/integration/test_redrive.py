"""`faceguard dlq list` and `faceguard dlq redrive`, driven as a user does, against a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import MakeStack
from tests.support import SAMPLES

pytestmark = pytest.mark.kafka


def test_requests_dead_lettered_for_a_missing_file_are_redriven_once_it_appears(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = make_stack(partitions=2)
    late = tmp_path / "late.png"
    ids = stack.submit(late.as_uri(), (tmp_path / "never.png").as_uri())
    stack.produce_raw([b"not json"])
    stack.start_worker()
    outputs = stack.outputs(3)
    assert len(outputs.dead_letters) == 3

    listed = stack.cli("dlq", "list", "--error-class", "source_not_found", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(x["faceguard-request-id"] for x in letters) == sorted(ids)
    assert {x["faceguard-original-topic"] for x in letters} == {stack.settings.topic_requests}
    assert stack.cli("dlq", "list", "--since", "1h", "--error-class", "not_an_image").stdout == ""

    late.write_bytes((SAMPLES / "astronaut.png").read_bytes())
    dry = stack.cli("dlq", "redrive", "--error-class", "source_not_found", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would redrive") == 2
    assert len(stack.settle(2.0).metadata) == 0, "a dry run publishes nothing"

    done = stack.cli("dlq", "redrive", "--error-class", "source_not_found", "--rate", "20")
    assert done.returncode == 0, done.stderr
    outputs = stack.outputs(lambda o: bool(o.metadata[ids[0]]) and len(o.dead_letters) == 4, timeout_s=60)
    assert len(outputs.metadata[ids[0]]) == 1
    # `never.png` fails again: dead-lettered a second time.
    again = [r for r in outputs.dead_letters if r.key == ids[1].encode()]
    assert len(again) == 2
    headers = {k: v.decode() for k, v in again[-1].headers}
    assert headers["faceguard-redrive-count"] == "1"
    assert headers["faceguard-original-topic"] == stack.settings.topic_requests
    # Redriven to the same partition as the original request (same key).
    first = {k: v.decode() for k, v in again[0].headers}
    assert headers["faceguard-original-partition"] == first["faceguard-original-partition"]

    refused = stack.cli("dlq", "redrive", "--error-class", "source_not_found", "--max-redrives", "1")
    assert refused.returncode == 0, refused.stderr
    assert "already redriven 1 times" in refused.stderr
