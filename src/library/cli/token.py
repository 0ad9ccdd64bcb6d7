"""``library token``: a development access token, signed with this checkout's development key
(the key ``library dev`` verifies tokens with)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from library.cli.arguments import _positive
from shared.settings import Settings

# The development signing key, beside the embedded database (ignored by git).
DEV_KEY_DIR = Path(".pgdata/dev-auth")


def add_parser(commands: Any) -> None:
    token_parser = commands.add_parser(
        "token",
        help="print a development access token (signed with this checkout's development key)",
        description="Print one access token on stdout, signed with the development key that "
        "`library dev` (make run) verifies tokens with.",
    )
    token_parser.add_argument(
        "--scope",
        default="catalog:write catalog:admin",
        help='space-separated scopes (default: "catalog:write catalog:admin")',
    )
    token_parser.add_argument(
        "--ttl", type=_positive, default=3600, help="seconds until it expires (default 3600)"
    )
    token_parser.add_argument("--sub", default="developer", help="the subject (default developer)")


def run(args: argparse.Namespace) -> None:
    print(development_token(args.scope, ttl=args.ttl, sub=args.sub))


def use_development_key() -> None:
    """Verify tokens with the development key pair (created once in DEV_KEY_DIR) unless a key
    set is configured."""
    from tools import devauth

    settings = Settings()
    if settings.auth_jwks_file is not None or settings.auth_jwks_url is not None:
        return
    key = devauth.ensure_key_pair(DEV_KEY_DIR.resolve())
    os.environ["LIBRARY_AUTH_JWKS_FILE"] = str(key.jwks_file)
    os.environ.setdefault("LIBRARY_AUTH_ISSUER", devauth.DEV_ISSUER)
    os.environ.setdefault("LIBRARY_AUTH_AUDIENCE", devauth.DEV_AUDIENCE)


def development_token(scopes: str, *, ttl: int, sub: str) -> str:
    """A token signed with this checkout's development key, for the configured issuer and
    audience (the development ones by default)."""
    from tools import devauth

    settings = Settings()
    key = devauth.ensure_key_pair(DEV_KEY_DIR.resolve())
    return key.sign(
        scopes,
        sub=sub,
        ttl=ttl,
        issuer=settings.auth_issuer or devauth.DEV_ISSUER,
        audience=settings.auth_audience or devauth.DEV_AUDIENCE,
    )
