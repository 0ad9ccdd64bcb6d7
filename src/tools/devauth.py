"""The development signing key and the tokens it signs (``make run``, ``library token``, tests).

A development key is an Ed25519 key pair kept beside the embedded database (``.pgdata/``,
ignored by git): ``signing-key.json`` (private, mode 0600) signs tokens; ``jwks.json`` (the
public half) is the key set the development server verifies them with, exactly as production
verifies a real issuer's tokens. Production never reads the private key.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

DEV_ISSUER: Final = "http://127.0.0.1:8000/dev-issuer"
DEV_AUDIENCE: Final = "library"
DEV_SUBJECT: Final = "developer"
DEFAULT_TTL_SECONDS: Final = 3600


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private signing key with its ``kid``, and where its public key set is written."""

    private_jwk: Mapping[str, Any]
    jwks_file: Path

    @property
    def kid(self) -> str:
        return str(self.private_jwk["kid"])

    def sign(
        self,
        scopes: str,
        *,
        sub: str = DEV_SUBJECT,
        ttl: int = DEFAULT_TTL_SECONDS,
        issuer: str = DEV_ISSUER,
        audience: str = DEV_AUDIENCE,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """An access token (RFC 9068 shape) for ``sub`` with ``scopes``, valid ``ttl`` seconds."""
        issued = int(time.time() if now is None else now)
        payload = {
            "iss": issuer,
            "sub": sub,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
            "client_id": sub,
            "scope": scopes,
            **claims,
        }
        key = jwt.PyJWK.from_dict(dict(self.private_jwk))
        return jwt.encode(
            payload, key.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "at+jwt"}
        )


def new_key_pair(directory: Path) -> SigningKey:
    """Write a fresh Ed25519 key pair into ``directory`` (``signing-key.json``, ``jwks.json``)."""
    directory.mkdir(parents=True, exist_ok=True)
    private = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
    kid = uuid.uuid4().hex[:16]
    private.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    public = {k: v for k, v in private.items() if k != "d"}
    key_file = directory / "signing-key.json"
    # Created private (0600) from the start: the secret is never readable by others.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(private, out)
    jwks_file = directory / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public]}, indent=2))
    return SigningKey(private_jwk=private, jwks_file=jwks_file)


def ensure_key_pair(directory: Path) -> SigningKey:
    """The key pair in ``directory``, created the first time."""
    key_file = directory / "signing-key.json"
    jwks_file = directory / "jwks.json"
    if key_file.is_file() and jwks_file.is_file():
        return SigningKey(private_jwk=json.loads(key_file.read_text()), jwks_file=jwks_file)
    return new_key_pair(directory)
