"""The fetch stage against real local servers: files under roots, hardened HTTP, hostile references."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest

from consumer.errors import (
    ForbiddenAddress,
    ImageTooLarge,
    NotAnImage,
    SourceNotFound,
    SourceUnavailable,
    UnsupportedReference,
)
from consumer.sources.address_policy import AddressPolicy, parse_networks
from consumer.sources.fetch import Fetcher, FetchPolicy
from consumer.sources.http import HttpLimits
from consumer.sources.s3 import S3Options
from consumer.sources.url_redaction import redact

PNG = cv2.imencode(".png", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()
JPEG = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()
LIMITS = HttpLimits(connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=4.0, max_redirects=3, max_bytes=1000)
LOOPBACK = AddressPolicy(allow_networks=parse_networks(["127.0.0.0/8"]))


def policy(root: Path, addresses: AddressPolicy = LOOPBACK, limits: HttpLimits = LIMITS) -> FetchPolicy:
    s3 = S3Options(
        endpoint_url="http://127.0.0.1:1", region="us-east-1", path_style=True, connect_timeout_s=1, read_timeout_s=1
    )
    return FetchPolicy(allowed_roots=(root,), http=limits, addresses=addresses, s3=s3, s3_buckets=frozenset())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jpg").write_bytes(b"abc")
    (tmp_path / "secret.txt").write_text("s")
    (tmp_path / "data" / "escape.jpg").symlink_to(tmp_path / "secret.txt")
    return tmp_path / "data"


@pytest.fixture
def fetcher(root: Path) -> Iterator[Fetcher]:
    fetcher = Fetcher(policy(root))
    yield fetcher
    fetcher.close()


def test_files_under_an_allowed_root_are_read(fetcher: Fetcher, root: Path) -> None:
    assert fetcher.fetch((root / "a.jpg").as_uri()) == b"abc"


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("file:///etc/hostname", UnsupportedReference),
        ("ROOT/escape.jpg", UnsupportedReference),  # a symlink out of the root
        ("ROOT/../secret.txt", UnsupportedReference),
        ("ROOT/missing.jpg", SourceNotFound),
        ("ROOT", SourceNotFound),  # a folder, not a file
        ("file://otherhost/x.jpg", UnsupportedReference),
        ("gopher://x/y", UnsupportedReference),
        ("s3://only-a-bucket", UnsupportedReference),
    ],
)
def test_references_outside_the_rules_are_refused(fetcher: Fetcher, root: Path, ref: str, error: type) -> None:
    with pytest.raises(error):
        fetcher.fetch(ref.replace("ROOT", root.as_uri()))


def test_files_over_the_limit_are_refused(fetcher: Fetcher, root: Path) -> None:
    (root / "big.jpg").write_bytes(b"x" * 1001)
    with pytest.raises(ImageTooLarge):
        fetcher.fetch((root / "big.jpg").as_uri())


class Server:
    """A real HTTP server on loopback with the routes the tests need, counting hits per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                hits[url.path] += 1
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                route = getattr(self, "route_" + url.path.strip("/").split("/")[0].replace("-", "_"), None)
                if route is None:
                    self.send_error(404)
                else:
                    route(url.path, query)

            def reply(self, status: int, body: bytes, content_type: str | None = None) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def route_png(self, _path: str, _query: dict[str, str]) -> None:
                self.reply(200, PNG, "image/png")

            def route_untyped(self, _path: str, _query: dict[str, str]) -> None:
                self.reply(200, PNG)

            def route_jpeg_as_png(self, _path: str, _query: dict[str, str]) -> None:
                self.reply(200, JPEG, "image/png")

            def route_html(self, _path: str, _query: dict[str, str]) -> None:
                self.reply(200, b"<html>sign in</html>", "text/html; charset=utf-8")

            def route_status(self, path: str, _query: dict[str, str]) -> None:
                self.reply(int(path.split("/")[2]), b"no", "text/plain")

            def route_redirect(self, _path: str, query: dict[str, str]) -> None:
                self.send_response(302)
                self.send_header("Location", query["to"])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def route_big_chunked(self, _path: str, _query: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(100):  # 100 KB, no Content-Length to stop it early
                    self.wfile.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def route_drip(self, _path: str, _query: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):  # each byte well inside the read timeout, the whole far past the total
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def test_an_image_from_an_allowed_server_is_read(fetcher: Fetcher, server: Server) -> None:
    assert fetcher.fetch(server.url("/png")) == PNG
    assert fetcher.fetch(server.url("/untyped")) == PNG
    assert fetcher.fetch(server.url("/redirect?to=/png")) == PNG


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/status/404", SourceNotFound),
        ("/status/403", SourceNotFound),
        ("/status/503", SourceUnavailable),
        ("/status/429", SourceUnavailable),
        ("/big-chunked", ImageTooLarge),
        ("/html", NotAnImage),  # an error page served with status 200
        ("/jpeg-as-png", NotAnImage),
        ("/redirect?to=/redirect?to=/redirect?to=/redirect?to=/png", UnsupportedReference),  # 4 redirects
        ("/redirect?to=file:///etc/passwd", UnsupportedReference),
    ],
)
def test_http_failures_are_classified(fetcher: Fetcher, server: Server, path: str, error: type) -> None:
    with pytest.raises(error):
        fetcher.fetch(server.url(path))


def test_a_body_that_drips_in_is_cut_at_the_total_deadline(fetcher: Fetcher, server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="longer than 4s"):
        fetcher.fetch(server.url("/drip"))
    assert time.monotonic() - started < LIMITS.total_timeout_s + LIMITS.read_timeout_s


def test_refused_connections_may_pass_later(fetcher: Fetcher) -> None:
    with pytest.raises(SourceUnavailable):
        fetcher.fetch("http://127.0.0.1:1/a.jpg")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "127.1", "2130706433", "[::ffff:127.0.0.1]", "0.0.0.0"],
)
def test_a_real_server_on_loopback_is_refused_by_default_however_it_is_named(
    root: Path, server: Server, host: str
) -> None:
    guarded = Fetcher(policy(root, AddressPolicy()))
    try:
        before = server.hits["/png"]
        with pytest.raises(ForbiddenAddress):
            guarded.fetch(server.url("/png", host))
        assert server.hits["/png"] == before, "the request must not reach the server"
    finally:
        guarded.close()


def test_a_redirect_to_a_forbidden_address_is_refused_at_the_hop(root: Path, server: Server) -> None:
    only_localhost = Fetcher(policy(root, AddressPolicy(allow_hosts=frozenset({"localhost"}))))
    try:
        assert only_localhost.fetch(server.url("/png", "localhost")) == PNG
        before = server.hits["/png"]
        with pytest.raises(ForbiddenAddress, match=r"127\.0\.0\.1"):
            only_localhost.fetch(server.url(f"/redirect?to={server.url('/png')}", "localhost"))
        with pytest.raises(ForbiddenAddress, match=r"169\.254\.169\.254"):
            only_localhost.fetch(server.url("/redirect?to=http://169.254.169.254/latest/meta-data/", "localhost"))
        assert server.hits["/png"] == before
    finally:
        only_localhost.close()


def test_userinfo_and_ports_outside_the_allowlist_are_refused(root: Path, server: Server) -> None:
    ports = Fetcher(policy(root, replace(LOOPBACK, allowed_ports=frozenset({443}))))
    try:
        with pytest.raises(ForbiddenAddress, match="port"):
            ports.fetch(server.url("/png"))
        with pytest.raises(UnsupportedReference, match="user information"):
            ports.fetch(f"https://user:secret@127.0.0.1:{server.port}/png")
    finally:
        ports.close()


def test_redacted_urls_lose_credentials_and_signatures() -> None:
    assert redact("https://user:pw@host:8443/a/b.jpg?X-Amz-Signature=abc#f") == "https://host:8443/a/b.jpg"
