"""Whether an image reference is well formed, checked before any source touches it.

A reference is untrusted text from the requests topic. Every way it can be
malformed (a control or NUL byte, a lone surrogate, URL syntax the parser
refuses, a port out of range, a host name no resolver accepts, a bucket name
S3 refuses) is reported here as `UnsupportedReference` with the reason, rather
than surfacing as a library's ValueError or UnicodeError deep inside a fetch.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

from consumer.errors import UnsupportedReference

MAX_REFERENCE_CHARS = 4096  # as the request contract allows
MAX_HOST_CHARS = 253  # DNS: the whole name
MAX_LABEL_CHARS = 63  # DNS: one label
# Today's rules are 3 to 63 of [a-z0-9.-]; older us-east-1 buckets may also hold capitals and underscores.
S3_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
MAX_S3_KEY_BYTES = 1024
SCHEMES = frozenset({"file", "http", "https", "s3"})


def check_reference(ref: str) -> None:
    """Raise UnsupportedReference when `ref` is not a well-formed file, http(s) or s3 reference."""
    if not ref or len(ref) > MAX_REFERENCE_CHARS:
        raise UnsupportedReference(f"a reference has 1 to {MAX_REFERENCE_CHARS} characters, not {len(ref)}")
    check_text(ref, "the reference")
    try:
        parts = urlsplit(ref)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise UnsupportedReference(f"not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsupportedReference(f"scheme {scheme or '(none)'!r} is not supported; use s3://, http(s):// or file://")
    if scheme == "file":
        try:
            path = unquote(parts.path, errors="strict")
        except UnicodeDecodeError as exc:
            raise UnsupportedReference(f"the path's %-escapes are not UTF-8: {exc.reason}") from exc
        check_text(path, "the path")
    elif scheme == "s3":
        check_s3(ref[len("s3://") :])
    else:
        check_web(parts)


def check_text(text: str, what: str) -> None:
    """Refuse control characters (NUL, C0, DEL, C1) and lone surrogates: never part of a name. (A space is, in
    a path or an S3 key; in a host name the host check refuses it.)"""
    for index, char in enumerate(text):
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            raise UnsupportedReference(f"{what} holds the character U+{code:04X} at position {index}")


def check_web(parts: SplitResult) -> None:
    host = parts.hostname or ""
    if not host:
        raise UnsupportedReference("the URL has no host")
    try:
        parts.port  # noqa: B018  # parsing it is the check: out of range or not a number raises
    except ValueError as exc:
        raise UnsupportedReference(f"invalid port: {exc}") from exc
    if ":" in host:  # an IPv6 literal; the address policy judges it
        return
    check_host_name(host)


def check_host_name(host: str) -> None:
    """A name the system resolver takes: IDNA-encodable, labels of 1 to 63 characters, 253 in all."""
    try:
        encoded = host.rstrip(".").encode("idna")
    except UnicodeError as exc:
        raise UnsupportedReference(f"host {host!r} is not a valid domain name: {exc}") from exc
    labels = encoded.split(b".")
    if len(encoded) > MAX_HOST_CHARS or any(not 0 < len(label) <= MAX_LABEL_CHARS for label in labels):
        raise UnsupportedReference(f"host {host!r} is not a valid domain name")
    if not all(re.fullmatch(rb"[A-Za-z0-9_-]+", label) for label in labels):
        raise UnsupportedReference(f"host {host!r} holds characters a domain name cannot")


def check_s3(location: str) -> None:
    """`bucket/key` as `parse_s3_uri` splits it: the key is taken as written."""
    bucket, _, key = location.partition("/")
    if not S3_BUCKET.match(bucket) or ".." in bucket:
        raise UnsupportedReference(f"{bucket!r} is not a valid S3 bucket name")
    if not key or len(key.encode()) > MAX_S3_KEY_BYTES:
        raise UnsupportedReference(f"an S3 key has 1 to {MAX_S3_KEY_BYTES} bytes")
