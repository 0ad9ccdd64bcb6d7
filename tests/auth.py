"""Tokens for the tests: a key pair of the session's own, and the settings that verify it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Final

from tools import devauth

KEY: Final = devauth.new_key_pair(Path(tempfile.mkdtemp(prefix="library-test-auth-")))
ISSUER: Final = "https://issuer.test/"
AUDIENCE: Final = "library-test"

AUTH_SETTINGS: Final[dict[str, Any]] = {
    "auth_jwks_file": KEY.jwks_file,
    "auth_issuer": ISSUER,
    "auth_audience": AUDIENCE,
    "rate_limit_enabled": False,
}
"""Settings fields that make an app verify the tests' tokens (rate limits off: tests send
bursts; the rate-limit tests turn them on)."""

ALL_SCOPES: Final = "catalog:read catalog:write catalog:admin"


def token(scopes: str = ALL_SCOPES, *, sub: str = "tester", **options: Any) -> str:
    """A token the tests' apps accept (``options``: ttl, now, issuer, audience, claims)."""
    options.setdefault("issuer", ISSUER)
    options.setdefault("audience", AUDIENCE)
    return KEY.sign(scopes, sub=sub, **options)


def bearer(scopes: str = ALL_SCOPES, *, sub: str = "tester", **options: Any) -> dict[str, str]:
    """An Authorization header with ``token(...)``."""
    return {"Authorization": f"Bearer {token(scopes, sub=sub, **options)}"}
