"""Bearer access tokens (RFC 6750) as JWTs (RFC 9068): verified once per request, by scope.

Signatures are checked by PyJWT against a configured key set (a JWKS file or URL), with the
algorithm taken from the key, never from the token: ``alg: none``, an HS256 token signed with
a public key (algorithm confusion) or a key the set does not hold are all refused. ``iss``,
``aud``, ``exp`` and ``nbf`` are checked, with 5 s of leeway.

Only the routes that need a token pay for it: a route declares ``Security(Authorization.need(
scope), scopes=[scope])`` (the OpenAPI shows the scheme and the scope), and reads are public
unless configured otherwise. A token verified earlier in the same request (by the rate limiter)
is not verified again, and a recently verified token is remembered until it expires.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import JSONResponse
from fastapi.security.base import SecurityBase

from shared.settings import Settings
from shared.web.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_PREFIX

log = structlog.stdlib.get_logger("library.auth")

READ: Final = "catalog:read"
WRITE: Final = "catalog:write"
ADMIN: Final = "catalog:admin"

LEEWAY_SECONDS: Final = 5
REALM: Final = "library"
# Where a request keeps what its Authorization header proved (set once, read by every user).
SCOPE_KEY: Final = "library.principal"
# The algorithms a key may name; HS256 (a shared secret) only where development allows it.
ASYMMETRIC: Final = frozenset({"RS256", "ES256", "EdDSA"})
_REMEMBERED_TOKENS = 4096
_REFRESH_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent the request (the token's ``sub``) and what they may do (its scopes)."""

    sub: str
    scopes: frozenset[str]
    expires_at: float


class AuthError(Exception):
    """401 (no token, or a bad one) or 403 (a good token without the scope)."""

    def __init__(self, status: int, detail: str, *, error: str | None, scope: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error
        self.scope = scope

    @property
    def www_authenticate(self) -> str:
        parts = [f'realm="{REALM}"']
        if self.error:
            parts.append(f'error="{self.error}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return "Bearer " + ", ".join(parts)


class InvalidTokenError(AuthError):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, error="invalid_token")


class KeySet:
    """The verification keys by ``kid``, from a JWKS document (a file, or a URL fetched at
    start-up and again, at most once a minute, when a token names a key it does not hold)."""

    def __init__(
        self, *, file: Path | None = None, url: str | None = None, allow_shared_secret: bool
    ) -> None:
        if (file is None) == (url is None):
            raise ValueError("configure exactly one of a JWKS file and a JWKS URL")
        self._file = file
        self._url = url
        self._allowed = ASYMMETRIC | ({"HS256"} if allow_shared_secret else set())
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False) if url else None
        if file is not None:
            self._keys = self._usable(json.loads(file.read_text()))

    async def load(self) -> None:
        """Fetch the key set from its URL (a file is read at construction)."""
        if self._client is not None:
            await self._fetch()

    async def _fetch(self) -> None:
        if self._client is None:  # only URL key sets fetch
            raise RuntimeError("this key set was read from a file: there is nothing to fetch")
        self._fetched_at = time.monotonic()
        document = await asyncio.to_thread(self._client.fetch_data)
        self._keys = self._usable(document)

    def _usable(self, document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for data in document.get("keys", []):
            kid = data.get("kid")
            if not kid or data.get("use", "sig") != "sig":
                continue
            key = jwt.PyJWK.from_dict(data)
            if key.algorithm_name not in self._allowed:
                raise ValueError(
                    f"key {kid!r} uses {key.algorithm_name}: only "
                    f"{', '.join(sorted(self._allowed))} are accepted here"
                )
            keys[kid] = key
        if not keys:
            raise ValueError("the key set holds no signing key with a kid")
        return keys

    async def get(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``, or None (a URL key set is fetched again when it is due)."""
        key = self._keys.get(kid)
        due = time.monotonic() - self._fetched_at >= _REFRESH_INTERVAL_SECONDS
        if key is None and self._client is not None and due:
            try:
                await self._fetch()
            except (jwt.PyJWKClientError, ValueError) as exc:
                log.warning("cannot refresh the key set", error=str(exc))
            key = self._keys.get(kid)
        return key


class Authenticator:
    """Verifies bearer tokens against a key set; remembers the tokens it has verified."""

    def __init__(self, keys: KeySet, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._verified: OrderedDict[str, Principal] = OrderedDict()

    async def start(self) -> None:
        await self._keys.load()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthError (401 invalid_token) otherwise."""
        remembered = self._verified.get(token)
        if remembered is not None:
            if remembered.expires_at + LEEWAY_SECONDS > time.time():
                return remembered
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidTokenError("The bearer token is not a JWT.") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidTokenError("The token names no key (kid).")
        key = await self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("The token is signed with a key this service does not know.")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name],  # from the key, never from the token
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("The token is not valid yet (nbf).") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError(f"The token is not valid: {exc}.") from None
        sub, scope = claims.get("sub"), claims.get("scope", "")
        if not isinstance(sub, str) or not sub or not isinstance(scope, str):
            raise InvalidTokenError("The token's sub or scope is malformed.")
        principal = Principal(
            sub=sub, scopes=frozenset(scope.split()), expires_at=float(claims["exp"])
        )
        if claims.get("nbf", 0) <= time.time():  # remember only what is valid from now on
            self._verified[token] = principal
            if len(self._verified) > _REMEMBERED_TOKENS:
                self._verified.popitem(last=False)
        return principal


def authenticator_from(settings: Settings) -> Authenticator | None:
    """The settings' authenticator (None when auth is off); RuntimeError if misconfigured."""
    settings.check_auth()
    if settings.auth_disabled:
        log.warning("authentication is OFF (development only): every request may write")
        return None
    issuer, audience = settings.auth_issuer or "", settings.auth_audience or ""
    try:
        keys = KeySet(
            file=settings.auth_jwks_file,
            url=settings.auth_jwks_url,
            allow_shared_secret=settings.environment == "development",
        )
    except (OSError, ValueError, jwt.PyJWKError) as exc:
        raise RuntimeError(f"cannot use the configured key set: {exc}") from None
    return Authenticator(keys, issuer=issuer, audience=audience)


def bearer_token(scope: Any) -> str | None:
    """The token of an ``Authorization: Bearer`` header (None without one); 401 if malformed."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            kind, _, token = text.strip().partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise InvalidTokenError("Authorization must be 'Bearer <token>'.")
            return token.strip()
    return None


async def principal_of(scope: Any, authenticator: Authenticator) -> Principal | None:
    """The request's principal (verified once per request; None when no token was sent)."""
    if SCOPE_KEY in scope:
        found: Principal | AuthError | None = scope[SCOPE_KEY]
    else:
        try:
            token = bearer_token(scope)
            found = None if token is None else await authenticator.verify(token)
        except AuthError as exc:
            found = exc
        scope[SCOPE_KEY] = found
    if isinstance(found, AuthError):
        raise found
    return found


class Bearer(SecurityBase):
    """A FastAPI security dependency: the principal of a request holding ``scope``.

    ``authenticator`` None means authentication is off (a development-only setting): every
    request is the anonymous development principal.
    """

    def __init__(self, authenticator: Authenticator | None, scope: str) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description=(
                "An OAuth 2.0 access token (JWT, RFC 9068) with the scopes the operation "
                "lists. In development, `make -s token` prints one."
            ),
        )
        self.scheme_name = "bearerAuth"
        self.authenticator = authenticator
        self.scope = scope

    def requirement(self) -> list[dict[str, list[str]]]:
        """The operation's ``security`` in OpenAPI, as FastAPI writes it for
        ``Security(self, scopes=[scope])`` (for a route that calls this dependency itself)."""
        return [{self.scheme_name: [self.scope]}]

    async def __call__(self, request: Request) -> Principal:
        if self.authenticator is None:
            request.scope[SCOPE_KEY] = DEVELOPMENT_PRINCIPAL
            return DEVELOPMENT_PRINCIPAL
        principal = await principal_of(request.scope, self.authenticator)
        if principal is None:
            raise AuthError(
                401, f"This operation needs a bearer token with {self.scope}.", error=None
            )
        if self.scope not in principal.scopes:
            raise AuthError(
                403,
                f"The token lacks the scope this operation needs: {self.scope}.",
                error="insufficient_scope",
                scope=self.scope,
            )
        return principal


DEVELOPMENT_PRINCIPAL: Final = Principal(
    sub="development", scopes=frozenset({READ, WRITE, ADMIN}), expires_at=float("inf")
)


@dataclass(frozen=True, slots=True)
class Authorization:
    """The dependencies routes declare: ``read`` is None when reads are public."""

    write: Bearer
    admin: Bearer
    read: Bearer | None

    @classmethod
    def of(cls, authenticator: Authenticator | None, *, reads_required: bool) -> Authorization:
        return cls(
            write=Bearer(authenticator, WRITE),
            admin=Bearer(authenticator, ADMIN),
            read=Bearer(authenticator, READ) if reads_required else None,
        )


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, AuthError):  # pragma: no cover - registered for this type only
        raise exc
    code = "insufficient-scope" if exc.status == 403 else "unauthorized"
    body = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": "Insufficient scope" if exc.status == 403 else "Unauthorized",
        "status": exc.status,
        "detail": exc.detail,
        "instance": request.url.path,
    }
    return JSONResponse(
        body,
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"WWW-Authenticate": exc.www_authenticate, "Cache-Control": "no-store"},
    )


def install_auth_handlers(app: FastAPI) -> None:
    """Answer 401 and 403 as problem+json with ``WWW-Authenticate`` (RFC 6750)."""
    app.add_exception_handler(AuthError, _auth_error)
