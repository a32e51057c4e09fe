"""Bearer JWT authentication for the HTTP API (RFC 6750), verified with PyJWT.

Tokens are signed with a shared HS256 secret or with RS256/ES256 keys whose public
halves are in a JWKS file. Every token must carry the configured audience and an
expiry that has not passed (and the issuer, when one is configured); a configured
scope must be granted in `scope` (space-separated) or `scp`. A missing or invalid
token is answered 401, a valid token without the scope 403.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from consumer.api.problems import Problem
from consumer.errors import SetupError

ASYMMETRIC = ("RS256", "ES256")
LEEWAY_S = 30  # clock skew allowed between the token's issuer and this server


@dataclass(frozen=True)
class AuthOptions:
    """How tokens are checked: an HS256 secret and/or a JWKS file, and the claims they must carry."""

    audience: str
    hs256_secret: str | None = None
    jwks_file: Path | None = None
    issuer: str | None = None
    scope: str | None = None


class TokenVerifier:
    """Checks the `Authorization` header of a request. Thread-safe (it holds only keys)."""

    def __init__(self, options: AuthOptions) -> None:
        """Raises SetupError when no key is configured or the JWKS file is unusable."""
        self._options = options
        self._keys: dict[str | None, jwt.PyJWK] = {}
        if options.jwks_file is not None:
            try:
                keyset = jwt.PyJWKSet.from_dict(json.loads(options.jwks_file.read_text()))
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise SetupError(f"FACEGUARD_JWT_JWKS_FILE {options.jwks_file} is not a usable JWKS: {exc}") from exc
            self._keys = {key.key_id: key for key in keyset.keys}
        if options.hs256_secret is None and not self._keys:
            raise SetupError("auth is on but no key is set: FACEGUARD_JWT_HS256_SECRET or FACEGUARD_JWT_JWKS_FILE")

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of the bearer token in `authorization`. Raises Problem (401 or 403)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("a bearer token is required (Authorization: Bearer <JWT>)", error=None)
        token = token.strip()
        try:
            key, algorithms = self._key_for(jwt.get_unverified_header(token))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._options.audience,
                issuer=self._options.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("the token has expired", error="invalid_token") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"the token was refused: {exc}", error="invalid_token") from exc
        if self._options.scope and self._options.scope not in granted_scopes(claims):
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"the token does not grant the scope {self._options.scope!r}",
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self._options.scope}"'},
            )
        return claims

    def _key_for(self, header: dict[str, Any]) -> tuple[Any, list[str]]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._options.hs256_secret is not None:
            return self._options.hs256_secret, ["HS256"]
        if algorithm in ASYMMETRIC and self._keys:
            key = self._keys.get(header.get("kid"))
            if key is None and len(self._keys) == 1 and header.get("kid") is None:
                key = next(iter(self._keys.values()))
            if key is None:
                raise jwt.InvalidKeyError(f"no key with kid {header.get('kid')!r} in the JWKS file")
            return key.key, [algorithm]
        raise jwt.InvalidAlgorithmError(f"tokens signed with {algorithm!r} are not accepted here")


def granted_scopes(claims: dict[str, Any]) -> set[str]:
    scope = claims.get("scope", claims.get("scp", ""))
    return set(scope.split()) if isinstance(scope, str) else {str(s) for s in scope}


def unauthorized(detail: str, error: str | None) -> Problem:
    challenge = 'Bearer realm="faceguard"' + (f', error="{error}"' if error else "")
    return Problem(401, "unauthorized", "Unauthorized", detail, {"WWW-Authenticate": challenge})
