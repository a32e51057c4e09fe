from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from consumer.errors import ImageTooLarge, SourceNotFound, SourceUnavailable, UnsupportedReference
from consumer.fetch import Fetcher, FetchPolicy, redact


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jpg").write_bytes(b"abc")
    (tmp_path / "secret.txt").write_text("s")
    (tmp_path / "data" / "escape.jpg").symlink_to(tmp_path / "secret.txt")
    return tmp_path / "data"


@pytest.fixture
def fetcher(root: Path) -> Iterator[Fetcher]:
    fetcher = Fetcher(FetchPolicy(allowed_roots=(root,), timeout_s=2.0, max_bytes=1000))
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
        ("file://otherhost/x.jpg", UnsupportedReference),
        ("gopher://x/y", UnsupportedReference),
    ],
)
def test_references_outside_the_rules_are_refused(fetcher: Fetcher, root: Path, ref: str, error: type) -> None:
    with pytest.raises(error):
        fetcher.fetch(ref.replace("ROOT", root.as_uri()))


def test_files_over_the_limit_are_refused(fetcher: Fetcher, root: Path) -> None:
    (root / "big.jpg").write_bytes(b"x" * 1001)
    with pytest.raises(ImageTooLarge):
        fetcher.fetch((root / "big.jpg").as_uri())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = int(self.path.strip("/").split("/")[0])
        body = b"y" * (5000 if "big" in self.path else 10)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("404/a.jpg", SourceNotFound),
        ("403/a.jpg", SourceNotFound),
        ("503/a.jpg", SourceUnavailable),
        ("429/a.jpg", SourceUnavailable),
        ("200/big.jpg", ImageTooLarge),
    ],
)
def test_http_failures_are_classified(fetcher: Fetcher, http_base: str, path: str, error: type) -> None:
    with pytest.raises(error):
        fetcher.fetch(f"{http_base}/{path}")


def test_http_ok_and_refused_connections(fetcher: Fetcher, http_base: str) -> None:
    assert fetcher.fetch(f"{http_base}/200/a.jpg") == b"y" * 10
    with pytest.raises(SourceUnavailable):
        fetcher.fetch("http://127.0.0.1:1/a.jpg")


def test_redacted_urls_lose_credentials_and_signatures() -> None:
    assert redact("https://user:pw@host:8443/a/b.jpg?X-Amz-Signature=abc#f") == "https://host:8443/a/b.jpg"
