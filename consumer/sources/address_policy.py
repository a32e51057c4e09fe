"""Which network addresses a reference may make the worker connect to.

A request's `image_ref` is untrusted: whoever can write to the requests topic
must not be able to point the worker at its own loopback services, the cluster's
private network or a cloud metadata endpoint. The check runs on the address a
connection is actually made to, after DNS (see `consumer/sources/http.py`), so a
host name that resolves to 127.0.0.1 or a redirect to 169.254.169.254 is refused
like the literal address would be.

Allowed by default: globally routable unicast addresses only. Refused: loopback,
private (RFC 1918, unique-local fc00::/7), link-local (169.254/16, fe80::/10),
shared (100.64/10), multicast, unspecified, reserved and documentation ranges,
IPv4 embedded in IPv6 (mapped, 6to4, NAT64, Teredo) when the IPv4 one would be
refused, and the metadata endpoints listed below. `allow_networks` and
`allow_hosts` open internal stores on purpose.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import SplitResult

from consumer.errors import ForbiddenAddress, UnsupportedReference

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata services; most are also link-local or private, listed so that
# allowing a private network never opens them by accident.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS ECS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
WEB_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AddressPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()  # exact host names, lower case
    allowed_ports: frozenset[int] = field(default_factory=frozenset)  # empty: any port

    def check_url(self, url: SplitResult) -> None:
        """Refuse a URL the worker must not request, before any connection.

        Raises UnsupportedReference (scheme, userinfo, no host) or ForbiddenAddress
        (port outside the allowlist, or a literal address that is refused).
        """
        if url.scheme.lower() not in WEB_SCHEMES:
            raise UnsupportedReference(f"scheme {url.scheme or '(none)'!r} is not allowed here; use http or https")
        if url.username is not None or url.password is not None:
            raise UnsupportedReference("URLs with user information (user:password@) are refused")
        host = (url.hostname or "").lower()
        if not host:
            raise UnsupportedReference("the URL has no host")
        try:
            port = url.port or DEFAULT_PORTS[url.scheme.lower()]
        except ValueError as exc:
            raise UnsupportedReference(f"invalid port: {exc}") from exc
        if self.allowed_ports and port not in self.allowed_ports:
            allowed = ", ".join(map(str, sorted(self.allowed_ports)))
            raise ForbiddenAddress(f"port {port} is not in the allowed ports ({allowed})")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return
        self.check_address(host, literal)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Refuse connecting to `address`, which `host` resolved to. Raises ForbiddenAddress."""
        if address in METADATA_ADDRESSES or embedded_ipv4(address) in METADATA_ADDRESSES:
            raise ForbiddenAddress(f"{host} resolves to {address}, a cloud metadata endpoint")
        if host.lower() in self.allow_hosts:
            return
        if any(address in network for network in self.allow_networks):
            return
        if not is_public(address):
            raise ForbiddenAddress(
                f"{host} resolves to {address}, which is not a public address "
                "(allow it with FACEGUARD_FETCH_ALLOW_NETWORKS or FACEGUARD_FETCH_ALLOW_HOSTS)"
            )


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address, judging IPv4 inside IPv6 by the IPv4 one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not address.is_multicast


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_networks(values: list[str]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR strings or single addresses. Raises ValueError with the bad value."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())
