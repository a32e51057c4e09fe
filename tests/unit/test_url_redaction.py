"""References as logs and the audit trail keep them: no signature or credential survives."""

from __future__ import annotations

import pytest

from consumer.sources.url_redaction import redact, without_credentials

S3_PRESIGNED = (
    "https://bucket.s3.eu-west-1.amazonaws.com/photos/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20261124%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261124T000000Z"
    "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef&version=3"
)


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        (S3_PRESIGNED, "https://bucket.s3.eu-west-1.amazonaws.com/photos/a.jpg?version=3"),
        (
            "https://storage.example/b/o.png?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=abc&id=7",
            "https://storage.example/b/o.png?id=7",
        ),
        (
            "https://acct.blob.example/c/p.webp?sv=2024-01-01&se=2026-12-01&sr=b&sp=r&sig=c2lnbmF0dXJl",
            "https://acct.blob.example/c/p.webp",
        ),
        ("https://cdn.example/p.jpg?Expires=1&Signature=s&Key-Pair-Id=K", "https://cdn.example/p.jpg"),
        ("https://user:pass@host.example:8443/p.jpg?token=t&size=large", "https://host.example:8443/p.jpg?size=large"),
        ("http://[2001:db8::1]:8080/p.jpg?access_token=t", "http://[2001:db8::1]:8080/p.jpg"),
        ("https://host.example/p.jpg#frag", "https://host.example/p.jpg"),
        ("s3://bucket/key.jpg", "s3://bucket/key.jpg"),
        ("file:///srv/images/a.jpg", "file:///srv/images/a.jpg"),
    ],
)
def test_audit_trail_keeps_what_names_the_image_and_drops_what_signs_it(ref: str, kept: str) -> None:
    assert without_credentials(ref) == kept


def test_logs_keep_scheme_host_and_path_only() -> None:
    assert redact(S3_PRESIGNED) == "https://bucket.s3.eu-west-1.amazonaws.com/photos/a.jpg"
    assert redact("https://u:p@h.example:81/x?id=1") == "https://h.example:81/x"
