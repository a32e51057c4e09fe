"""A worker, run as `faceguard worker`, on a real broker: requests in, masked images and metadata out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest

from schemas.export import schema_path
from tests.image_server import ImageServer
from tests.images import (
    ASTRONAUT_FACE,
    ASTRONAUT_MOST_BOXES,
    exif_rotated_astronaut,
    has_gps,
    upright_astronaut_crop,
)
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES, decode, images_with_large_faces, iou, outside_change, read_image, region_change

pytestmark = pytest.mark.kafka

# A blurred face keeps less than this share of its detail (Laplacian variance) ...
MAX_DETAIL_LEFT = 0.35
# ... and away from the masked regions a JPEG re-encode changes pixels by less than this on average.
MAX_NOISE_OUTSIDE = 2.5


ASTRONAUT_BYTES = (SAMPLES / "astronaut.png").read_bytes()


def test_every_request_gets_one_masked_image_and_one_metadata_event(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(partitions=3, default_preset=True)
    photos = images_with_large_faces(6)
    no_faces = [SAMPLES / "chelsea.png", SAMPLES / "coffee.png"]
    rotated = tmp_path / "rotated-gps.jpg"
    upright_size = exif_rotated_astronaut(rotated)
    ids = stack.submit(*[p.path for p in photos], *no_faces, rotated)
    assert len(ids) == len(photos) + 3
    stack.start_worker()

    outputs = stack.outputs(set(ids))
    outputs = stack.settle(2.0)
    assert not outputs.dead_letters, [dict(r.headers) for r in outputs.dead_letters]
    for request_id in ids:
        assert len(outputs.masked[request_id]) == 1, request_id
        assert len(outputs.metadata[request_id]) == 1, request_id

    validator = jsonschema.Draft202012Validator(json.loads(schema_path("face_metadata_event").read_text()))
    events = {rid: json.loads(outputs.metadata[rid][0].value or b"") for rid in ids}
    for request_id, event in events.items():
        validator.validate(event)
        headers = dict(outputs.masked[request_id][0].headers)
        assert headers["faceguard-request-id"] == request_id.encode()
        assert headers["faceguard-face-count"] == str(event["total_count"]).encode()
        assert headers["content-type"] == event["image"]["content_type"].encode()

    # Photos with faces: every annotated face is found, every reported face is masked, the rest is
    # untouched. (The default preset leans to recall: a reported face need not be an annotated one.)
    for photo, request_id in zip(photos, ids, strict=False):
        event = events[request_id]
        assert event["total_count"] >= 1, photo.path.name
        before = decode(photo.path.read_bytes())
        after = decode(outputs.masked[request_id][0].value or b"")
        assert after.shape == before.shape
        for annotated in photo.faces:
            assert any(iou(tuple(f["bbox"]), annotated) >= 0.3 for f in event["faces"]), (photo.path.name, annotated)
        for face in event["faces"]:
            diff, detail_left = region_change(before, after, tuple(face["bbox"]))
            assert detail_left < MAX_DETAIL_LEFT, (photo.path.name, face["bbox"], detail_left)
            assert diff > 3, (photo.path.name, face["bbox"], diff)
        regions = [tuple(face["mask"]["region"]) for face in event["faces"]]
        assert outside_change(before, after, regions) < MAX_NOISE_OUTSIDE, photo.path.name

    # Images without people: nothing changes outside what was reported (PNG is lossless). The default preset
    # masks the cat's face and, at most, one patch of the coffee cup's foam (50 px, score 0.42, found at full
    # size and again by the second look): when in doubt, mask.
    for path, request_id in zip(no_faces, ids[len(photos) :], strict=False):
        regions = [tuple(face["mask"]["region"]) for face in events[request_id]["faces"]]
        after = decode(outputs.masked[request_id][0].value or b"")
        assert outside_change(decode(path.read_bytes()), after, regions) == 0.0, path.name
    assert events[ids[len(photos) + 1]]["total_count"] <= 1

    # EXIF orientation 6 with GPS: masked upright, on the face, and no GPS (nor any EXIF) left.
    check_rotated_output(events[ids[-1]], outputs.masked[ids[-1]][0].value or b"", rotated, upright_size, tmp_path)


def check_rotated_output(
    event: dict[str, Any], output: bytes, rotated: Path, upright_size: tuple[int, int], tmp_path: Path
) -> None:
    assert (event["image"]["width"], event["image"]["height"]) == upright_size
    assert not has_gps(output, tmp_path / "out.jpg")
    assert b"Exif" not in output[:4096]
    after = decode(output)
    assert (after.shape[1], after.shape[0]) == upright_size
    # The upright input as a correct decoder shows it (the box check below does not rely on OpenCV).
    before = cv2.rotate(read_image(rotated, cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR), cv2.ROTATE_90_CLOCKWISE)
    reference = cv2.cvtColor(np.asarray(upright_astronaut_crop()), cv2.COLOR_RGB2BGR)
    assert np.abs(before.astype(int) - reference.astype(int)).mean() < 3, "the test image is not what it should be"
    # The face is the one box where it is upright; the others, if any, are patches of the suit.
    assert 1 <= event["total_count"] <= ASTRONAUT_MOST_BOXES
    [face] = [tuple(f["bbox"]) for f in event["faces"] if iou(tuple(f["bbox"]), ASTRONAUT_FACE) > 0.5]
    diff, detail_left = region_change(before, after, face)
    assert detail_left < MAX_DETAIL_LEFT
    assert diff > 3
    assert outside_change(before, after, [tuple(f["mask"]["region"]) for f in event["faces"]]) < MAX_NOISE_OUTSIDE


def test_bad_records_are_dead_lettered_and_their_neighbours_processed(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(partitions=1, default_preset=True)  # one partition: the bad records sit between good ones
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("these are not pixels")
    good = (SAMPLES / "astronaut.png").as_uri()

    def request(request_id: str, ref: str) -> bytes:
        return json.dumps({"request_id": request_id, "image_ref": ref}).encode()

    stack.produce_raw(
        [
            request("good-1", good),
            b"{this is not json",
            request("good-2", good),
            request("missing", (tmp_path / "nowhere.png").as_uri()),
            request("not-image", not_an_image.as_uri()),
            request("good-3", good),
            request("ftp", "ftp://example.invalid/x.png"),
            request("outside", "file:///etc/hostname"),
        ]
    )
    stack.start_worker()
    outputs = stack.outputs(8)
    assert {"good-1", "good-2", "good-3"} <= set(outputs.metadata)
    reasons = {}
    for record in outputs.dead_letters:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["faceguard-original-topic"] == stack.settings.topic_requests
        assert record.key == f"raw-{headers['faceguard-original-offset']}".encode()  # the key is kept
        reasons[headers["faceguard-original-offset"]] = (
            headers["faceguard-error-class"],
            headers["faceguard-error-reason"],
        )
        assert headers["faceguard-retryable"] == "false"
    assert reasons.keys() == {"1", "3", "4", "6", "7"}
    assert reasons["1"][0] == "invalid_request"
    assert "not JSON" in reasons["1"][1]
    assert reasons["3"][0] == "source_not_found"
    assert "does not exist" in reasons["3"][1]
    assert reasons["4"][0] == "not_an_image"
    assert "not a JPEG, PNG, BMP or WebP" in reasons["4"][1]
    assert reasons["6"][0] == "invalid_request"
    assert "image_ref" in reasons["6"][1]
    assert reasons["7"][0] == "unsupported_reference"
    assert "outside the allowed roots" in reasons["7"][1]
    # The dead letter carries the request as it was consumed, for inspection and redrive.
    values = {r.value for r in outputs.dead_letters}
    assert b"{this is not json" in values
    assert stack.workers[0].poll() is None, "the worker must keep running"


def test_collect_writes_images_metadata_and_dead_letters_into_a_folder(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(partitions=1)
    ids = stack.submit(SAMPLES / "astronaut.png")
    stack.produce_raw([b"not json"])
    stack.start_worker()
    stack.outputs(2)
    out = tmp_path / "collected"
    done = stack.cli("collect", "-o", str(out), "--expect", "2", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"masked": 1, "dead_lettered": 1, "folder": str(out)}
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{ids[0]}.png", f"{ids[0]}.json", "dead-letters.jsonl"])
    assert json.loads((out / f"{ids[0]}.json").read_text())["total_count"] == 1
    [line] = (out / "dead-letters.jsonl").read_text().splitlines()
    dead = json.loads(line)
    assert dead["headers"]["faceguard-error-class"] == "invalid_request"
    assert dead["value"] == "not json"


def test_a_presigned_urls_signature_stays_out_of_the_outputs(make_stack: MakeStack, image_server: ImageServer) -> None:
    """The audit trail names the image, not the credentials that fetched it; nor does the worker's log."""
    url = image_server.script(
        "/signed.png?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=s3cr3tsig&version=2", ASTRONAUT_BYTES
    )
    stack = make_stack(partitions=1)
    [request_id] = stack.submit(url)
    stack.start_worker()
    outputs = stack.outputs({request_id}, timeout_s=60)
    [metadata] = outputs.metadata[request_id]
    event = json.loads(metadata.value or b"{}")
    assert event["source_ref"] == url.split("?")[0] + "?version=2"
    for record in [metadata, *outputs.masked[request_id]]:
        assert b"s3cr3tsig" not in (record.value or b"")
        assert all(b"s3cr3tsig" not in value for _, value in record.headers)
    assert "s3cr3tsig" not in stack.worker_log()


def test_a_record_finishing_within_the_commit_gap_is_committed_when_the_gap_ends(make_stack: MakeStack) -> None:
    """With nothing else in flight the worker waits on the consumer's poll; a record waiting out the commit gap
    must cut that wait short, or its outputs would stay unreadable until the next request or the poll timeout."""
    gap_s, poll_timeout_s = 3.0, 120.0
    stack = make_stack(partitions=1)
    stack.start_worker(FACEGUARD_MIN_COMMIT_GAP_S=str(gap_s), FACEGUARD_POLL_TIMEOUT_S=str(poll_timeout_s))
    [first] = stack.submit(SAMPLES / "chelsea.png")
    assert first in stack.outputs({first}).finished()
    # The second request arrives and finishes well within the gap since the first one's commit.
    stack.produce_raw([json.dumps({"request_id": "second", "image_ref": (SAMPLES / "coffee.png").as_uri()}).encode()])
    outputs = stack.outputs({"second"}, timeout_s=gap_s + 20)
    assert "second" in outputs.finished(), "not committed when the gap ended"
