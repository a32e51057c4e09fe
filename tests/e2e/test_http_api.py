"""The HTTP API, driven as its clients drive it: `faceguard serve` on a loopback port, real client libraries
(requests, as the original service's clients use it; httpx), real multipart bodies."""

from __future__ import annotations

import json
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import requests

from tests.api_server import ApiServer, running_server
from tests.images import ASTRONAUT_FACE
from tests.integration.stack import free_port
from tests.support import BIN, SAMPLES, SHARED_DATA, decode, images_with_large_faces, iou, region_change

MAX_DETAIL_LEFT = 0.35  # a masked face keeps less than this share of its detail (as the worker's tests)
MAX_BYTES = 4_000_000  # the test server's byte limit
LARGE = SHARED_DATA / "large"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_server(
        tmp_path_factory.mktemp("serve"), FACEGUARD_HTTP_THREADS="2", FACEGUARD_MAX_IMAGE_BYTES=str(MAX_BYTES)
    ) as running:
        yield running


def test_the_original_clients_code_gets_masked_faces_and_the_json(server: ApiServer, tmp_path: Path) -> None:
    url = f"{server.url}/process"
    for photo in images_with_large_faces(3):
        # The original service's client code, unchanged.
        with open(photo.path, "rb") as f:
            response = requests.post(url, files={"image": f})
        faces = int(response.headers["X-Faces-Count"])
        with open(tmp_path / "masked.jpg", "wb") as out:
            out.write(response.content)

        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert faces >= len(photo.faces)
        assert float(response.headers["X-Processing-Time-Ms"]) > 0
        assert response.headers["X-Request-Id"]
        before, after = decode(photo.path.read_bytes()), decode((tmp_path / "masked.jpg").read_bytes())
        for box in photo.faces:
            assert region_change(before, after, box)[1] < MAX_DETAIL_LEFT, (photo.path.name, box)

        with open(photo.path, "rb") as f:
            answer = requests.post(url, files={"image": f}, headers={"Accept": "application/json"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["total_count"] == len(body["faces"]) == faces
        assert body["processing_time_ms"] > 0
        for face in body["faces"]:
            assert set(face) >= {"bbox", "confidence", "blur_radius", "verification", "mask"}
            assert face["blur_radius"] > 0
        for box in photo.faces:
            assert max(iou(tuple(f["bbox"]), box) for f in body["faces"]) > 0.3


def test_formats_headers_and_raw_bodies(server: ApiServer) -> None:
    png = (SAMPLES / "astronaut.png").read_bytes()
    answer = httpx.post(
        f"{server.url}/process", content=png, headers={"Content-Type": "image/png", "X-Request-Id": "mine-1"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"  # lossless stays lossless
    assert answer.headers["x-request-id"] == "mine-1"
    assert answer.headers["x-faces-count"] == "1"
    assert region_change(decode(png), decode(answer.content), ASTRONAUT_FACE)[1] < MAX_DETAIL_LEFT

    for accept, content_type in (("image/webp", "image/webp"), ("image/jpeg", "image/jpeg"), ("*/*", "image/png")):
        converted = httpx.post(f"{server.url}/process", files={"image": png}, headers={"Accept": accept})
        assert converted.status_code == 200, converted.text
        assert converted.headers["content-type"] == content_type
        decode(converted.content)

    detected = httpx.post(f"{server.url}/detect", files={"image": ("a.png", png, "image/png")})
    assert detected.status_code == 200
    body = detected.json()
    assert body["total_count"] == 1
    assert iou(tuple(body["faces"][0]["bbox"]), ASTRONAUT_FACE) > 0.5
    assert "output_sha256" not in body  # nothing was masked or encoded


def test_location_metadata_does_not_survive(server: ApiServer, tmp_path: Path) -> None:
    from tests.images import exif_rotated_astronaut, has_gps

    rotated = tmp_path / "gps.jpg"
    exif_rotated_astronaut(rotated)
    assert has_gps(rotated.read_bytes(), tmp_path / "in.jpg")
    answer = requests.post(f"{server.url}/process", files={"image": rotated.open("rb")})
    assert answer.status_code == 200
    assert not has_gps(answer.content, tmp_path / "out.jpg")


def test_options_can_make_masking_stronger_never_weaker(server: ApiServer) -> None:
    png = (SAMPLES / "astronaut.png").read_bytes()

    def mask_of(**options: str) -> dict[str, object]:
        answer = requests.post(
            f"{server.url}/process",
            files={"image": ("a.png", png)},
            data=options,
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        mask: dict[str, object] = answer.json()["faces"][0]["mask"]
        return mask

    default = mask_of()
    assert mask_of(method="pixelate")["method"] == "pixelate"
    assert mask_of(margin="0.6")["region"] != default["region"]
    weaker = mask_of(strength="0.1", margin="0", shape="ellipse")
    assert (weaker["strength"], weaker["region"], weaker["shape"]) == (1.0, default["region"], "box")
    via_query = requests.post(
        f"{server.url}/process?method=fill", files={"image": png}, headers={"Accept": "application/json"}
    )
    assert via_query.json()["faces"][0]["mask"]["method"] == "fill"
    fast = requests.post(f"{server.url}/detect?preset=fast", files={"image": png})
    assert fast.status_code == 200  # a weaker preset is raised to the server's (its faces are the server's)
    assert fast.json()["faces"] == requests.post(f"{server.url}/detect", files={"image": png}).json()["faces"]


def problem(answer: requests.Response | httpx.Response, status: int, reason: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = answer.json()
    assert body["status"] == status
    assert body["reason"] == reason
    assert str(body["type"]).endswith(reason)
    assert body["title"]
    assert body["detail"]
    return body


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header promises `width` x `height` gray pixels: its rows would inflate to that."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 64, 9)  # 64 rows of zeros; the rest would follow the same way
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_every_bad_request_gets_a_typed_problem_and_the_server_carries_on(server: ApiServer) -> None:
    url = f"{server.url}/process"
    jpeg = images_with_large_faces(1)[0].path.read_bytes()
    problem(requests.post(url, files={"image": (SAMPLES.parent / "README.md").open("rb")}), 400, "not_an_image")
    problem(requests.post(url, files={"image": ("cut.jpg", jpeg[: len(jpeg) // 3])}), 400, "not_an_image")
    problem(requests.post(url, files={"image": ("a.gif", b"GIF89a" + b"\x00" * 64)}), 415, "unsupported_image")
    problem(requests.post(url, data=b"hello", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    problem(requests.post(url, files={"picture": ("a.jpg", jpeg)}), 400, "missing_image")
    problem(requests.post(url, files={"image": ("a.jpg", jpeg)}, data={"strength": "2"}), 400, "invalid_options")
    problem(requests.post(url, files={"image": ("a.jpg", jpeg)}, data={"preset": "best"}), 400, "invalid_options")
    problem(
        requests.post(url, files={"image": ("a.jpg", jpeg)}, headers={"Accept": "text/html"}), 406, "not_acceptable"
    )
    problem(requests.get(f"{server.url}/nowhere"), 404, "not_found")
    problem(requests.get(url), 405, "method_not_allowed")

    bomb = problem(requests.post(url, files={"image": ("bomb.png", bomb_png(50_000, 50_000))}), 413, "image_too_large")
    assert "50000x50000 pixels is more than the limit" in str(bomb["detail"])  # from the header: nothing decoded

    def oversized() -> Iterator[bytes]:  # streamed without a length: refused while reading
        for _ in range(3 * MAX_BYTES // 65536):
            yield b"\xff" * 65536

    cut = requests.post(url, data=oversized(), headers={"Content-Type": "image/jpeg"})
    assert "over the limit of 4000000 bytes" in str(problem(cut, 413, "image_too_large")["detail"])
    declared = httpx.post(url, content=b"\xff" * (MAX_BYTES + 1), headers={"Content-Type": "image/jpeg"})
    problem(declared, 413, "image_too_large")

    still = requests.post(url, files={"image": ("a.jpg", jpeg)})
    assert still.status_code == 200
    assert int(still.headers["X-Faces-Count"]) >= 1
    metrics = requests.get(f"{server.url}/metrics").text
    assert 'faceguard_http_requests_total{method="POST",route="/process",status="413"}' in metrics
    assert 'faceguard_stage_seconds_count{stage="detect"}' in metrics


def test_health_probes_and_openapi(server: ApiServer) -> None:
    health = requests.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert "(balanced)" in health["model"]
    assert "verifier" in health["model"]
    assert requests.get(f"{server.url}/healthz").status_code == 200
    assert requests.get(f"{server.url}/readyz").status_code == 200
    document = requests.get(f"{server.url}/openapi.json").json()
    assert {"/process", "/detect", "/health"} <= set(document["paths"])
    exported = json.loads((BIN.parent.parent / "schemas" / "openapi.json").read_text())
    assert exported["paths"].keys() == document["paths"].keys()
    # The image's health check (`faceguard probe`) finds no worker on the probe port and asks `serve`.
    port = server.url.rsplit(":", 1)[1]
    environment = {"PATH": "/usr/bin:/bin", "FACEGUARD_PROBE_PORT": str(free_port()), "FACEGUARD_HTTP_PORT": port}
    for check in ("live", "ready"):
        asked = subprocess.run(
            [str(BIN / "faceguard"), "probe", check], env=environment, capture_output=True, text=True
        )
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert json.loads(asked.stdout)["status"] == "ok"


def test_a_flood_beyond_the_queue_gets_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    photo = (LARGE / "deepface_img40.jpg").read_bytes()  # 14 megapixels: a second or so of work
    with running_server(tmp_path, FACEGUARD_HTTP_THREADS="1", FACEGUARD_HTTP_QUEUE="1") as small:

        def send(_: int) -> httpx.Response:
            return httpx.post(f"{small.url}/detect", files={"image": photo}, timeout=60)

        with ThreadPoolExecutor(8) as senders:
            answers = list(senders.map(send, range(8)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(200) >= 2, statuses
        assert statuses.count(503) >= 4, statuses
        for refused in (a for a in answers if a.status_code == 503):
            assert refused.headers["retry-after"] == "1"
            problem(refused, 503, "at_capacity")
        after = httpx.post(f"{small.url}/detect", files={"image": photo}, timeout=60)
        assert after.status_code == 200
        assert 'faceguard_http_refused_total{reason="at_capacity"}' in httpx.get(f"{small.url}/metrics").text


def test_a_request_past_its_deadline_gets_503_and_the_server_goes_on(tmp_path: Path) -> None:
    photo = (LARGE / "deepface_img40.jpg").read_bytes()
    small_photo = (SAMPLES / "astronaut.png").read_bytes()
    with running_server(tmp_path, FACEGUARD_HTTP_THREADS="1", FACEGUARD_HTTP_DEADLINE_S="0.2") as strict:
        late = httpx.post(f"{strict.url}/process", files={"image": photo}, timeout=60)
        problem(late, 503, "deadline")
        time.sleep(3)  # the work under way finishes on its thread; nothing waits for it
        answer = httpx.post(f"{strict.url}/detect", files={"image": small_photo}, timeout=60)
        assert answer.status_code == 200


def test_sigterm_lets_requests_under_way_finish(tmp_path: Path) -> None:
    photo = (LARGE / "deepface_img40.jpg").read_bytes()
    with running_server(tmp_path, FACEGUARD_HTTP_THREADS="1") as draining, ThreadPoolExecutor(1) as sender:
        under_way = sender.submit(httpx.post, f"{draining.url}/process", files={"image": photo}, timeout=60)
        time.sleep(0.5)
        draining.process.send_signal(15)
        answer = under_way.result()
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/jpeg"
        assert draining.process.wait(30) == 0
        assert "stopped serving" in draining.log_text()


def test_serve_refuses_a_public_address_with_auth_off() -> None:
    done = subprocess.run(
        [str(BIN / "faceguard"), "serve"],
        env={"FACEGUARD_HTTP_HOST": "0.0.0.0", "FACEGUARD_LOG_FORMAT": "text", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "refusing to serve on 0.0.0.0 with auth off" in done.stderr


def test_bearer_tokens_are_checked_when_auth_is_on(tmp_path: Path) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1", "alg": "RS256"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec-1", "alg": "ES256"},
    ]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": keys}))
    secret = "s3cret-for-the-tests-only-0123456789"
    now = int(time.time())
    claims = {"aud": "faceguard", "exp": now + 300, "scope": "images:mask other"}

    def token(key: object = secret, algorithm: str = "HS256", kid: str | None = None, **changes: object) -> str:
        headers = {"kid": kid} if kid else None
        return jwt.encode({**claims, **changes}, key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]

    png = (SAMPLES / "astronaut.png").read_bytes()
    with running_server(
        tmp_path,
        FACEGUARD_HTTP_AUTH="jwt",
        FACEGUARD_JWT_HS256_SECRET=secret,
        FACEGUARD_JWT_JWKS_FILE=str(jwks),
        FACEGUARD_JWT_AUDIENCE="faceguard",
        FACEGUARD_JWT_SCOPE="images:mask",
    ) as guarded:

        def detect(authorization: str | None) -> requests.Response:
            headers = {} if authorization is None else {"Authorization": authorization}
            return requests.post(f"{guarded.url}/detect", files={"image": png}, headers=headers)

        for good in (token(), token(rsa_key, "RS256", "rsa-1"), token(ec_key, "ES256", "ec-1")):
            assert detect(f"Bearer {good}").status_code == 200
        missing = problem(detect(None), 401, "unauthorized")
        assert "bearer token is required" in str(missing["detail"])
        assert detect(None).headers["www-authenticate"].startswith("Bearer")
        refused = {
            "wrong secret": token("another-secret-of-at-least-32-bytes!!"),
            "expired": token(exp=now - 3600),
            "wrong audience": token(aud="someone-else"),
            "unknown key": token(rsa_key, "RS256", "rsa-2"),
            "not signed": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
            "garbage": "not.a.token",
        }
        for why, bad in refused.items():
            answer = problem(detect(f"Bearer {bad}"), 401, "unauthorized")
            assert 'error="invalid_token"' in detect(f"Bearer {bad}").headers["www-authenticate"], why
            if why == "expired":
                assert "expired" in str(answer["detail"])
        problem(detect(f"Bearer {token(scope='other')}"), 403, "forbidden")
        assert requests.get(f"{guarded.url}/health").status_code == 200  # the probes stay open
        assert requests.get(f"{guarded.url}/metrics").status_code == 200
