"""S3 and S3-compatible stores (MinIO, Ceph, R2): the client, reads, writes, and errors.

boto3 is the client: it is the reference SDK, reads the standard AWS credential
chain (environment, profile, web identity on Kubernetes, instance roles) with no
code of ours, and pools connections. Its retries are off: a failure is raised at
once and the retry topics decide what happens next. The store's errors are
translated here, once: throttling, timeouts and 5xx may pass later; a missing
key or bucket and a refused access are the reference's fault.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from consumer.errors import (
    ImageTooLarge,
    OutputStoreUnavailable,
    RecordFailure,
    SourceNotFound,
    SourceUnavailable,
    UnsupportedReference,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404", "NoSuchVersion"})
REFUSED = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"})
INVALID = frozenset({"InvalidObjectState", "InvalidBucketName", "KeyTooLongError", "InvalidArgument"})
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None
    region: str | None
    path_style: bool
    connect_timeout_s: float
    read_timeout_s: float


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def s3_client(options: S3Options) -> S3Client:
    """A client for one thread (boto3 clients are thread-safe, but each thread pools its own)."""
    config = Config(
        region_name=options.region,
        connect_timeout=options.connect_timeout_s,
        read_timeout=options.read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=8,
        s3={"addressing_style": "path" if options.path_style else "auto"},
    )
    client: S3Client = boto3.session.Session().client("s3", endpoint_url=options.endpoint_url, config=config)
    return client


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/key` split; the key is taken as written. Raises UnsupportedReference."""
    rest = uri[len("s3://") :] if uri.lower().startswith("s3://") else ""
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise UnsupportedReference("s3 references need a bucket and a key: s3://bucket/key")
    return S3Location(bucket, key)


@contextmanager
def translated_errors(location: S3Location, verb: str) -> Iterator[None]:
    """Raise the store's errors as Faceguard's, each with the object and the store's reason."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        reason = f"{verb} {location.uri}: {code or status} {error.get('Message', '')}".strip()
        if code in NOT_FOUND or (status == 404 and not code):
            raise SourceNotFound(reason) from exc
        if code in REFUSED:
            raise SourceNotFound(f"access denied: {reason}") from exc
        if code in INVALID:
            raise UnsupportedReference(reason) from exc
        raise SourceUnavailable(reason) from exc  # throttling (SlowDown, 503), 5xx, anything unknown
    except NoCredentialsError as exc:
        raise SourceUnavailable(f"{verb} {location.uri}: no S3 credentials found (AWS_* variables)") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, closed connections
        raise SourceUnavailable(f"{verb} {location.uri}: {type(exc).__name__}: {exc}") from exc


def read_object(client: S3Client, location: S3Location, max_bytes: int) -> tuple[bytes, str | None]:
    """The object's bytes and declared content type, streamed up to `max_bytes`.

    Raises SourceNotFound, UnsupportedReference, ImageTooLarge or SourceUnavailable.
    """
    with translated_errors(location, "reading"):
        response = client.get_object(Bucket=location.bucket, Key=location.key)
        body = response["Body"]
        try:
            size = response.get("ContentLength", 0)
            if size > max_bytes:
                raise ImageTooLarge(f"{location.uri} has {size} bytes, over the limit of {max_bytes}")
            data = bytearray()
            for chunk in body.iter_chunks(CHUNK_BYTES):
                data += chunk
                if len(data) > max_bytes:
                    raise ImageTooLarge(f"{location.uri} is larger than {max_bytes} bytes")
            return bytes(data), response.get("ContentType")
        finally:
            body.close()


def write_object(client: S3Client, location: S3Location, data: bytes, content_type: str, sha256_hex: str) -> None:
    """Put `data` at `location`; the store checks it against its SHA-256.

    Raises OutputStoreUnavailable for every failure: the request is retried, and an
    operator fixes a store that refuses writes (the circuit breaker stops the drain).
    """
    checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    try:
        with translated_errors(location, "writing"):
            client.put_object(
                Bucket=location.bucket,
                Key=location.key,
                Body=data,
                ContentType=content_type,
                ChecksumSHA256=checksum,
                Metadata={"sha256": sha256_hex},
            )
    except RecordFailure as exc:
        raise OutputStoreUnavailable(str(exc)) from exc
