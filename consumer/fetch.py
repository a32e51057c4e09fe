"""Fetch stage: an image reference in, its bytes out.

`file://` references must resolve (symlinks followed) inside one of the allowed
roots; `http://` and `https://` are read with a deadline and a streamed size limit.
Failures are translated here, once, into Faceguard's error types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from consumer.errors import ImageTooLarge, SourceNotFound, SourceUnavailable, UnsupportedReference

MAX_REDIRECTS = 5
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPolicy:
    allowed_roots: tuple[Path, ...]
    timeout_s: float
    max_bytes: int


class Fetcher:
    """Reads image bytes for references; holds one pooled HTTP client. Close it when done."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._http = httpx.Client(
            timeout=httpx.Timeout(policy.timeout_s), follow_redirects=True, max_redirects=MAX_REDIRECTS
        )

    def close(self) -> None:
        self._http.close()

    def fetch(self, ref: str) -> bytes:
        """The bytes `ref` points at.

        Raises UnsupportedReference, SourceNotFound, ImageTooLarge (dead-letter) or
        SourceUnavailable (may pass later).
        """
        scheme = urlsplit(ref).scheme.lower()
        if scheme == "file":
            return read_file(local_path(ref, self._policy.allowed_roots), self._policy.max_bytes)
        if scheme in ("http", "https"):
            return self._read_http(ref)
        raise UnsupportedReference(f"scheme {scheme or '(none)'!r} is not supported; use file://, http:// or https://")

    def _read_http(self, url: str) -> bytes:
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code in (404, 410):
                    raise SourceNotFound(f"HTTP {response.status_code} for {redact(url)}")
                if response.status_code in RETRYABLE_HTTP:
                    raise SourceUnavailable(f"HTTP {response.status_code} for {redact(url)}")
                if response.status_code >= 400:
                    raise SourceNotFound(f"HTTP {response.status_code} for {redact(url)}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self._policy.max_bytes:
                        raise ImageTooLarge(f"{redact(url)} is larger than {self._policy.max_bytes} bytes")
                return bytes(body)
        except httpx.TooManyRedirects as exc:
            raise UnsupportedReference(f"more than {MAX_REDIRECTS} redirects from {redact(url)}") from exc
        except httpx.InvalidURL as exc:
            raise UnsupportedReference(f"invalid URL: {exc}") from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise SourceUnavailable(f"{type(exc).__name__} fetching {redact(url)}") from exc


def redact(url: str) -> str:
    """`url` without userinfo, query or fragment, which may hold credentials or signatures."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def local_path(ref: str, allowed_roots: tuple[Path, ...]) -> Path:
    """The real path of a file:// reference, checked to lie inside an allowed root."""
    parts = urlsplit(ref)
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedReference(f"file:// references must be local, not on host {parts.netloc!r}")
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        raise UnsupportedReference("file:// references must hold an absolute path")
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in allowed_roots):
        roots = ", ".join(str(r) for r in allowed_roots) or "none configured (FACEGUARD_ALLOWED_ROOTS)"
        raise UnsupportedReference(f"{path} is outside the allowed roots: {roots}")
    return real


def read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SourceNotFound(f"{path} is not a regular file")
        if size > max_bytes:
            raise ImageTooLarge(f"{path} has {size} bytes, more than the limit of {max_bytes}")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceNotFound(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise SourceNotFound(f"{path} is not readable by the worker") from exc
