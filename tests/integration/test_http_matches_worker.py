"""One pipeline, two doors: `faceguard serve`'s POST /process and a `faceguard worker` on the real broker give
the same boxes and byte-identical masked images for the same image and options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.api_server import running_server
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES, images_with_large_faces

pytestmark = pytest.mark.kafka


def test_process_and_the_worker_mask_alike(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(partitions=1, default_preset=True)
    photos = [p.path for p in images_with_large_faces(2)] + [SAMPLES / "astronaut.png"]
    options = {"method": "pixelate", "margin": "0.5"}
    plain_ids = stack.submit(*photos)
    done = stack.cli("submit", "--method", "pixelate", "--margin", "0.5", *map(str, photos))
    assert done.returncode == 0, done.stderr
    optioned_ids = [line.split("\t")[0] for line in done.stdout.splitlines()]
    stack.start_worker()
    outputs = stack.outputs(set(plain_ids) | set(optioned_ids), timeout_s=120)

    settings = {key: value for key, value in stack.env.items() if key.startswith(("FACEGUARD_", "KAFKA_"))}
    with running_server(tmp_path / "serve", FACEGUARD_HTTP_BRIDGE="true", **settings) as api:
        for ids, form in ((plain_ids, {}), (optioned_ids, options)):
            for photo, request_id in zip(photos, ids, strict=True):
                event = json.loads(outputs.metadata[request_id][0].value or b"")
                masked = outputs.masked[request_id][0].value
                with photo.open("rb") as f:
                    image = requests.post(f"{api.url}/process", files={"image": f}, data=form)
                with photo.open("rb") as f:
                    answer = requests.post(
                        f"{api.url}/process", files={"image": f}, data=form, headers={"Accept": "application/json"}
                    )
                assert image.status_code == 200, image.text
                body = answer.json()
                assert [f["bbox"] for f in body["faces"]] == [f["bbox"] for f in event["faces"]], photo.name
                assert [f["mask"] for f in body["faces"]] == [f["mask"] for f in event["faces"]], photo.name
                assert int(image.headers["X-Faces-Count"]) == event["total_count"]
                assert image.content == masked, f"{photo.name}: the masked bytes differ"
                assert body["output_sha256"] == event["output_sha256"]

        # The bridge: an ImageRequest over HTTP, published to the requests topic, masked by the worker.
        request = {"request_id": "over-http-1", "image_ref": (SAMPLES / "astronaut.png").as_uri()}
        accepted = requests.post(f"{api.url}/v1/requests", json=request)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"request_id": "over-http-1", "topic": stack.settings.topic_requests}
        refused = requests.post(f"{api.url}/v1/requests", json={"request_id": "no-ref"})
        assert refused.status_code == 400
        assert refused.json()["reason"] == "invalid_request"
        assert "image_ref" in refused.json()["detail"]
    bridged = stack.outputs({"over-http-1"}, timeout_s=60)
    assert len(bridged.masked["over-http-1"]) == 1
    assert json.loads(bridged.metadata["over-http-1"][0].value or b"")["total_count"] == 1
