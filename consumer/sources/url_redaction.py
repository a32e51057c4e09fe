"""What of a reference may be written down: logs keep scheme, host and path only; the audit
trail (the metadata event's `source_ref`) also keeps query parameters, except those that sign
or authorise, so a presigned URL's signature never outlives the request.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials or signatures: AWS SigV4 and Google V4 (x-amz-*, x-goog-*),
# Azure SAS, CloudFront signed URLs, and the usual token names. Matched case-insensitively.
CREDENTIAL_PREFIXES = ("x-amz-", "x-goog-")
CREDENTIAL_PARAMS = frozenset(
    {"signature", "sig", "se", "st", "sp", "sv", "sr", "skoid", "sktid", "policy", "key-pair-id", "expires"}
    | {"awsaccesskeyid", "googleaccessid", "token", "access_token", "auth", "apikey", "api_key", "key"}
)


def without_credentials(ref: str) -> str:
    """`ref` as the audit trail keeps it: no userinfo, and no query parameter that signs or authorises
    (presigned S3, GCS and CloudFront URLs, Azure SAS). Other parameters, which may name the image, stay."""
    parts = urlsplit(ref)
    if parts.scheme not in ("http", "https"):
        return ref
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in CREDENTIAL_PARAMS and not name.lower().startswith(CREDENTIAL_PREFIXES)
    ]
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, urlencode(query), ""))


def redact(url: str) -> str:
    """`url` without userinfo, query or fragment, which may hold credentials or signatures."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{_netloc(parts)}{parts.path}"


def _netloc(parts: SplitResult) -> str:
    """Host and port without userinfo."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host
