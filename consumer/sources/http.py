"""Reading images over HTTP(S) from untrusted references.

Every connection goes through `GuardedBackend`, which resolves the host itself,
checks each address with the `AddressPolicy` and connects to the checked address
(TLS still verifies the host name). Redirects are followed here, one hop at a
time, so each hop's URL is checked too. Deadlines: connect, read (between bytes)
and total (checked before each hop and after each chunk). The body is streamed
and reading stops at the size limit. No retries: a failure is raised once and
the retry topics decide what happens next.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from consumer.errors import ImageTooLarge, SourceNotFound, SourceUnavailable, UnsupportedReference
from consumer.sources.address_policy import AddressPolicy
from consumer.sources.references import check_reference
from consumer.sources.url_redaction import redact

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class HttpLimits:
    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    max_redirects: int
    max_bytes: int


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None  # as the source declared it


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Raises ForbiddenAddress if any address `host` resolves to is refused."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:  # all of them: a name may mix public and private answers
            self._policy.check_address(host, ipaddress.ip_address(address.split("%")[0]))
        error: Exception | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def guarded_client(policy: AddressPolicy, limits: HttpLimits) -> httpx.Client:
    """A pooled client whose every connection passes `policy`; no proxies from the environment."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its pool without a way to pass a network backend; swap in one that has it.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=16,
        max_keepalive_connections=8,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy),
    )
    timeout = httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


class HttpSource:
    """Fetches http(s) references; holds one pooled client. Close it when done."""

    def __init__(self, policy: AddressPolicy, limits: HttpLimits) -> None:
        self._policy = policy
        self._limits = limits
        self._client = guarded_client(policy, limits)

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> Fetched:
        """The body at `url`, following redirects.

        Raises UnsupportedReference or ForbiddenAddress (refused reference), SourceNotFound
        (4xx), ImageTooLarge (over the byte limit) or SourceUnavailable (timeouts,
        connection failures, 5xx and 429).
        """
        deadline = time.monotonic() + self._limits.total_timeout_s
        for _hop in range(self._limits.max_redirects + 1):
            check_reference(url)  # a redirect's target is as untrusted as the request's
            self._policy.check_url(urlsplit(url))
            try:
                fetched, location = self._get(url, deadline)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                raise SourceUnavailable(f"{type(exc).__name__} fetching {redact(url)}") from exc
            except httpx.InvalidURL as exc:
                raise UnsupportedReference(f"invalid URL: {exc}") from exc
            if fetched is not None:
                return fetched
            url = location
        raise UnsupportedReference(f"more than {self._limits.max_redirects} redirects")

    def _get(self, url: str, deadline: float) -> tuple[Fetched | None, str]:
        """One request: the body, or None and the redirect target."""
        with self._client.stream("GET", url, timeout=self._timeout(deadline, url)) as response:
            status = response.status_code
            if status in REDIRECT_STATUS and "location" in response.headers:
                return None, urljoin(url, response.headers["location"])
            if status in RETRYABLE_STATUS:
                raise SourceUnavailable(f"HTTP {status} for {redact(url)}")
            if status >= 300:
                raise SourceNotFound(f"HTTP {status} for {redact(url)}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self._limits.max_bytes:
                raise ImageTooLarge(
                    f"{redact(url)} declares {declared} bytes, over the limit of {self._limits.max_bytes}"
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._limits.max_bytes:
                    raise ImageTooLarge(f"{redact(url)} is larger than {self._limits.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise SourceUnavailable(f"{redact(url)} took longer than {self._limits.total_timeout_s:g}s")
            return Fetched(bytes(body), response.headers.get("content-type")), url

    def _timeout(self, deadline: float, url: str) -> httpx.Timeout:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SourceUnavailable(f"{redact(url)}: no time left of {self._limits.total_timeout_s:g}s")
        return httpx.Timeout(min(self._limits.read_timeout_s, left), connect=min(self._limits.connect_timeout_s, left))
