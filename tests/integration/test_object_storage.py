"""Images in object storage, against a real S3-compatible server (MinIO, see tests/conftest.py):
s3:// references read and their failures classified, and the claim check writing large masked
images to the store with the records pointing at them."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from consumer.errors import ImageTooLarge, NotAnImage, SourceNotFound, SourceUnavailable, UnsupportedReference
from consumer.imaging.types import ImageFormat
from consumer.processing.claim_check import ClaimCheck, S3Store
from consumer.processing.pipeline import AnonymizedImage
from consumer.sources.address_policy import AddressPolicy
from consumer.sources.fetch import Fetcher, FetchPolicy
from consumer.sources.http import HttpLimits
from consumer.sources.s3 import S3Location, S3Options
from schemas import STORED_IMAGE_CONTENT_TYPE, ErrorClass, FaceMetadataEvent, StageTimings, StoredImage
from tests.conftest import S3Server
from tests.integration.conftest import MakeStack
from tests.support import SAMPLES

ASTRONAUT = (SAMPLES / "astronaut.png").read_bytes()
LIMITS = HttpLimits(connect_timeout_s=2, read_timeout_s=5, total_timeout_s=10, max_redirects=0, max_bytes=2_000_000)


def options(server: S3Server, endpoint: str | None = None) -> S3Options:
    return S3Options(endpoint or server.endpoint, "us-east-1", True, connect_timeout_s=2, read_timeout_s=5)


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket holding the astronaut (typed), an untyped copy and an HTML page; AWS_* set for the worker side."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    name = f"faceguard-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="in/astronaut.png", Body=ASTRONAUT, ContentType="image/png")
    client.put_object(Bucket=name, Key="in/untyped.png", Body=ASTRONAUT)
    client.put_object(Bucket=name, Key="in/page.png", Body=b"<html></html>", ContentType="text/html")
    return name


def fetcher_for(server: S3Server, buckets: frozenset[str] = frozenset(), endpoint: str | None = None) -> Fetcher:
    policy = FetchPolicy((), LIMITS, AddressPolicy(), options(server, endpoint), buckets)
    return Fetcher(policy)


def test_s3_objects_are_read_and_failures_classified(s3_server: S3Server, bucket: str) -> None:
    fetcher = fetcher_for(s3_server)
    try:
        assert fetcher.fetch(f"s3://{bucket}/in/astronaut.png") == ASTRONAUT
        assert fetcher.fetch(f"s3://{bucket}/in/untyped.png") == ASTRONAUT
        with pytest.raises(SourceNotFound, match="NoSuchKey"):
            fetcher.fetch(f"s3://{bucket}/in/missing.png")
        with pytest.raises(SourceNotFound, match="NoSuchBucket"):
            fetcher.fetch(f"s3://{bucket}-gone/in/astronaut.png")
        with pytest.raises(NotAnImage, match="text/html"):
            fetcher.fetch(f"s3://{bucket}/in/page.png")
    finally:
        fetcher.close()


def test_s3_limits_allowlists_credentials_and_outages(
    s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = Fetcher(FetchPolicy((), HttpLimits(2, 5, 10, 0, 1000), AddressPolicy(), options(s3_server), frozenset()))
    with pytest.raises(ImageTooLarge):
        small.fetch(f"s3://{bucket}/in/astronaut.png")
    small.close()
    with pytest.raises(UnsupportedReference, match="allowed buckets"):
        fetcher_for(s3_server, frozenset({"another-bucket"})).fetch(f"s3://{bucket}/in/astronaut.png")
    with pytest.raises(SourceUnavailable):
        fetcher_for(s3_server, endpoint="http://127.0.0.1:1").fetch(f"s3://{bucket}/in/astronaut.png")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(SourceNotFound, match="access denied"):
        fetcher_for(s3_server).fetch(f"s3://{bucket}/in/astronaut.png")


def test_the_claim_check_writes_one_object_per_request_and_image(s3_server: S3Server, bucket: str) -> None:
    store = S3Store(S3Location(bucket, "masked"), options(s3_server))
    check = ClaimCheck(store, inline_max_bytes=1024, always=False)
    stored = [check.place("req-1", anonymized(ASTRONAUT)) for _ in range(2)]  # a retry writes the same object
    sha = hashlib.sha256(ASTRONAUT).hexdigest()
    assert (
        stored[0]
        == stored[1]
        == StoredImage(
            uri=f"s3://{bucket}/masked/req-1/{sha}.png", size_bytes=len(ASTRONAUT), sha256=sha, content_type="image/png"
        )
    )
    listing = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="masked/")
    assert [o["Key"] for o in listing["Contents"]] == [f"masked/req-1/{sha}.png"]
    body = s3_server.client().get_object(Bucket=bucket, Key=f"masked/req-1/{sha}.png")
    assert body["ContentType"] == "image/png"
    assert body["Body"].read() == ASTRONAUT
    assert check.place("req-2", anonymized(b"x" * 100)) is None  # small enough to go inline
    with pytest.raises(ImageTooLarge, match="FACEGUARD_OUTPUT_STORE"):
        ClaimCheck(None, 1024, always=False).place("req-3", anonymized(ASTRONAUT))


def anonymized(data: bytes) -> AnonymizedImage:
    """A pipeline result holding `data` as its PNG output (what the claim check reads of it)."""
    timings = StageTimings(fetch_ms=0, decode_ms=0, detect_ms=0, mask_ms=0, encode_ms=0)
    sha = hashlib.sha256(data).hexdigest()
    return AnonymizedImage(
        data=data,
        format=ImageFormat.PNG,
        width=1,
        height=1,
        faces=[],
        timings=timings,
        input_sha256=sha,
        output_sha256=sha,
    )


@pytest.mark.kafka
def test_a_worker_reads_from_s3_and_stores_large_outputs_there(
    make_stack: MakeStack, s3_server: S3Server, bucket: str
) -> None:
    stack = make_stack(
        partitions=1,
        **s3_server.env,
        FACEGUARD_OUTPUT_STORE=f"s3://{bucket}/masked",
        FACEGUARD_INLINE_MAX_BYTES="1024",
    )
    good, missing = stack.submit(f"s3://{bucket}/in/astronaut.png", f"s3://{bucket}/in/missing.png")
    stack.start_worker()
    outputs = stack.outputs({good, missing}, timeout_s=90)

    [masked] = outputs.masked[good]
    assert dict(masked.headers)["content-type"] == STORED_IMAGE_CONTENT_TYPE.encode()
    stored = StoredImage.model_validate_json(masked.value or b"")
    key = stored.uri.removeprefix(f"s3://{bucket}/")
    assert key == f"masked/{good}/{stored.sha256}.png"
    data = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    assert len(data) == stored.size_bytes
    assert data != ASTRONAUT  # masked
    [metadata] = outputs.metadata[good]
    event = FaceMetadataEvent.model_validate_json(metadata.value or b"")
    assert event.output == stored
    assert event.total_count == 1

    [dead] = outputs.dead_letters
    headers = {name: value.decode() for name, value in dead.headers}
    assert headers["faceguard-error-class"] == ErrorClass.SOURCE_NOT_FOUND.value
    assert "NoSuchKey" in headers["faceguard-error-reason"]
    assert json.loads(dead.value or b"")["image_ref"] == f"s3://{bucket}/in/missing.png"
