"""Fetch stage: an image reference in, its bytes out.

    s3://bucket/key     the object store (`consumer/sources/s3.py`), buckets optionally allowlisted
    http(s)://...       public addresses only, unless allowlisted (`consumer/sources/http.py`)
    file:///path        under the allowed roots only (`consumer/sources/files.py`)

Whatever the source, the bytes are checked against the content type it declared:
an HTML error page served with status 200, or a PNG labelled image/jpeg, is not
passed on as an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from consumer.errors import NotAnImage, UnsupportedReference
from consumer.imaging.decode import sniff_format
from consumer.sources.address_policy import AddressPolicy
from consumer.sources.files import local_path, read_file
from consumer.sources.http import HttpLimits, HttpSource
from consumer.sources.references import check_reference
from consumer.sources.s3 import S3Options, parse_s3_uri, read_object, s3_client
from consumer.sources.url_redaction import redact

# Declared types that say nothing about the bytes; anything else must match them.
UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True)
class FetchPolicy:
    allowed_roots: tuple[Path, ...]
    http: HttpLimits
    addresses: AddressPolicy
    s3: S3Options
    s3_buckets: frozenset[str]  # empty: any

    @property
    def max_bytes(self) -> int:
        return self.http.max_bytes


class Fetcher:
    """Reads image bytes for references; holds one pooled HTTP client and one S3 client. Close it when done."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._http = HttpSource(policy.addresses, policy.http)
        self._s3 = s3_client(policy.s3)

    def close(self) -> None:
        self._http.close()
        self._s3.close()

    def fetch(self, ref: str) -> bytes:
        """The bytes `ref` points at.

        Raises InvalidInput subclasses (dead-letter at once) or SourceUnavailable (may pass later).
        """
        check_reference(ref)
        scheme = urlsplit(ref).scheme.lower()
        if scheme == "file":
            return read_file(local_path(ref, self._policy.allowed_roots), self._policy.max_bytes)
        if scheme in ("http", "https"):
            fetched = self._http.fetch(ref)
            check_content_type(fetched.content_type, fetched.data, redact(ref))
            return fetched.data
        if scheme == "s3":
            location = parse_s3_uri(ref)
            buckets = self._policy.s3_buckets
            if buckets and location.bucket not in buckets:
                raise UnsupportedReference(
                    f"bucket {location.bucket!r} is not in the allowed buckets (FACEGUARD_S3_BUCKETS)"
                )
            data, content_type = read_object(self._s3, location, self._policy.max_bytes)
            check_content_type(content_type, data, location.uri)
            return data
        raise UnsupportedReference(f"scheme {scheme or '(none)'!r} is not supported; use s3://, http(s):// or file://")


def check_content_type(declared: str | None, data: bytes, where: str) -> None:
    """Raise NotAnImage when the declared type contradicts the bytes."""
    media_type = (declared or "").split(";")[0].strip().lower()
    if media_type in UNTYPED:
        return
    if not media_type.startswith("image/"):
        raise NotAnImage(f"{where} was served as {media_type}, not as an image")
    found = sniff_format(data)
    if found.content_type != media_type and not _aliases(media_type, found.content_type):
        raise NotAnImage(f"{where} was served as {media_type} but holds {found.content_type}")


def _aliases(declared: str, actual: str) -> bool:
    """Spellings of the same type seen in the wild."""
    return {declared, actual} in (
        {"image/jpg", "image/jpeg"},
        {"image/pjpeg", "image/jpeg"},
        {"image/x-ms-bmp", "image/bmp"},
    )
