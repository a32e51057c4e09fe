"""Which addresses a reference may reach: the pure part of the SSRF guard."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest

from consumer.errors import ForbiddenAddress, UnsupportedReference
from consumer.sources.address_policy import AddressPolicy, parse_networks

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.10.10",  # link-local
    "100.64.1.1",  # shared address space (carrier-grade NAT)
    "100.100.100.200",  # Alibaba metadata
    "192.0.0.192",  # Oracle metadata
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
]
ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_and_metadata_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(ForbiddenAddress, match=str(ip).replace(".", r"\.")):
        AddressPolicy().check_address("images.example", ip)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    AddressPolicy().check_address("images.example", ipaddress.ip_address(address))


def test_allowlisted_networks_and_hosts_open_internal_stores_but_never_metadata() -> None:
    policy = AddressPolicy(
        allow_networks=parse_networks(["10.1.0.0/16", "169.254.0.0/16"]), allow_hosts=frozenset({"minio.internal"})
    )
    policy.check_address("store", ipaddress.ip_address("10.1.2.3"))
    policy.check_address("minio.internal", ipaddress.ip_address("192.168.7.7"))
    policy.check_address("store", ipaddress.ip_address("169.254.1.1"))
    with pytest.raises(ForbiddenAddress):
        policy.check_address("store", ipaddress.ip_address("10.2.0.1"))
    with pytest.raises(ForbiddenAddress, match="metadata"):
        policy.check_address("minio.internal", ipaddress.ip_address("169.254.169.254"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://user:pw@images.example/a.jpg", UnsupportedReference),
        ("https://user@images.example/a.jpg", UnsupportedReference),
        ("ftp://images.example/a.jpg", UnsupportedReference),
        ("http:///a.jpg", UnsupportedReference),
        ("http://169.254.169.254/latest/meta-data/", ForbiddenAddress),
        ("http://[::ffff:7f00:1]/a.jpg", ForbiddenAddress),
        ("https://images.example:8443/a.jpg", ForbiddenAddress),  # port not in the allowlist
    ],
)
def test_urls_are_refused_before_any_connection(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        AddressPolicy(allowed_ports=frozenset({80, 443})).check_url(urlsplit(url))


def test_ports_are_free_without_an_allowlist() -> None:
    AddressPolicy().check_url(urlsplit("https://images.example:8443/a.jpg"))
    AddressPolicy(allowed_ports=frozenset({443})).check_url(urlsplit("https://images.example/a.jpg"))
