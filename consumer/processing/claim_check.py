"""Claim check: a masked image too large for a Kafka record goes to an object store.

The masked-images record then carries a `StoredImage` (URI, size, sha256,
content type) instead of the bytes. Object keys are deterministic,
`<prefix>/<request id>/<sha256>.<ext>`, so a retried or reprocessed request
writes the same object again instead of leaving orphans. The object is written
by the processing thread before the record is handed to the producer, so no
transaction (exactly-once) or delivery (at-least-once) publishes a reference to
an object that was not written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from consumer.errors import ImageTooLarge, OutputStoreUnavailable
from consumer.processing.pipeline import AnonymizedImage
from consumer.sources.s3 import S3Location, S3Options, s3_client, write_object
from schemas import StoredImage


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str, sha256_hex: str) -> str:
        """Write `data` under `key`, replacing any object there; returns its URI.

        Raises OutputStoreUnavailable.
        """
        ...


class S3Store:
    def __init__(self, base: S3Location, options: S3Options) -> None:
        self._bucket = base.bucket
        self._prefix = base.key.strip("/")
        self._client = s3_client(options)

    def put(self, key: str, data: bytes, content_type: str, sha256_hex: str) -> str:
        location = S3Location(self._bucket, f"{self._prefix}/{key}" if self._prefix else key)
        write_object(self._client, location, data, content_type, sha256_hex)
        return location.uri


class FolderStore:
    """A local or mounted folder; each object is written to a temporary file, synced, then renamed."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def put(self, key: str, data: bytes, content_type: str, sha256_hex: str) -> str:
        path = self._root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as part:
                part.write(data)
                part.flush()
                os.fsync(part.fileno())
            os.replace(part.name, path)
        except OSError as exc:
            raise OutputStoreUnavailable(f"writing {path}: {exc.strerror or exc}") from exc
        return path.as_uri()


def open_store(uri: str, s3_options: S3Options) -> ObjectStore:
    """The store an `output_store` setting names: s3://bucket[/prefix] or file:///folder."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return S3Store(S3Location(bucket, prefix), s3_options)
    return FolderStore(Path(unquote(urlsplit(uri).path)))


class ClaimCheck:
    """Decides, per masked image, inline or stored; writes the stored ones."""

    def __init__(self, store: ObjectStore | None, inline_max_bytes: int, always: bool) -> None:
        self._store = store
        self._inline_max = inline_max_bytes
        self._always = always and store is not None

    def place(self, request_id: str, image: AnonymizedImage) -> StoredImage | None:
        """None when the image goes inline, else where it was stored.

        Raises ImageTooLarge (over the inline size with no store configured) or
        OutputStoreUnavailable.
        """
        size = len(image.data)
        if not self._always and size <= self._inline_max:
            return None
        if self._store is None:
            raise ImageTooLarge(
                f"the masked image has {size} bytes, over the inline limit of {self._inline_max}, "
                "and no output store is configured (FACEGUARD_OUTPUT_STORE)"
            )
        content_type = image.format.content_type
        key = f"{request_id}/{image.output_sha256}{image.format.extension}"
        uri = self._store.put(key, image.data, content_type, image.output_sha256)
        return StoredImage(uri=uri, size_bytes=size, sha256=image.output_sha256, content_type=content_type)
