"""Bearer tokens: who may change the catalog (401/403 with WWW-Authenticate, RFC 6750)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from library.bootstrap.app import create_app
from shared.settings import Settings
from tests.auth import AUDIENCE, AUTH_SETTINGS, ISSUER, KEY, bearer, token
from tests.integration.helpers import API, assert_problem, create_author, if_match, running_app
from tools import devauth


def _unauthorized(response: httpx.Response, *, token_sent: bool) -> None:
    body = assert_problem(response, 401, "unauthorized")
    assert body["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="library"')
    assert ('error="invalid_token"' in challenge) is token_sent
    assert response.headers["cache-control"] == "no-store"


async def test_writes_without_a_token_are_401_and_change_nothing(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    author = await create_author(client, "Kept")
    url = f"{API}/authors/{author['id']}"
    _unauthorized(await anonymous.post(f"{API}/authors", json={"name": "X"}), token_sent=False)
    _unauthorized(
        await anonymous.post(f"{API}/books", json={"title": "T", "author_ids": [author["id"]]}),
        token_sent=False,
    )
    _unauthorized(
        await anonymous.patch(url, json={"name": "Y"}, headers={"If-Match": "*"}),
        token_sent=False,
    )
    _unauthorized(await anonymous.delete(url, headers={"If-Match": "*"}), token_sent=False)
    # Even an invalid body or a missing If-Match: who you are is checked first.
    _unauthorized(await anonymous.post(f"{API}/authors", json={"nope": 1}), token_sent=False)
    _unauthorized(await anonymous.delete(url), token_sent=False)
    assert (await anonymous.get(url)).json() == author  # reads stay public
    listed = await anonymous.get(f"{API}/authors")
    assert [a["id"] for a in listed.json()["items"]] == [author["id"]]


def _forged_none_token() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 600}
    claims["scope"] = "catalog:write catalog:admin"
    return f"{part({'alg': 'none', 'kid': KEY.kid})}.{part(claims)}."


def _confused_token() -> str:
    """HS256, keyed with the public key itself (the classic algorithm confusion), signed by
    hand: PyJWT refuses to sign it."""
    public = json.dumps({k: v for k, v in KEY.private_jwk.items() if k != "d"}).encode()
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 600}
    claims["scope"] = "catalog:write"
    signing_input = f"{_b64({'alg': 'HS256', 'kid': KEY.kid})}.{_b64(claims)}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _stranger_token(kid: str) -> str:
    """Signed by a key the service does not hold (under a kid it knows, or not)."""
    other = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
    other.update({"kid": kid, "alg": "EdDSA"})
    stranger = devauth.SigningKey(private_jwk=other, jwks_file=Path("unused"))
    return stranger.sign("catalog:write", issuer=ISSUER, audience=AUDIENCE)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        pytest.param(lambda: token(ttl=1, now=time.time() - 10), id="expired beyond leeway"),
        pytest.param(lambda: token(now=time.time() + 30), id="not valid yet (nbf)"),
        pytest.param(lambda: token(issuer="https://evil.test/"), id="other issuer"),
        pytest.param(lambda: token(audience="another-api"), id="other audience"),
        pytest.param(_forged_none_token, id="alg none"),
        pytest.param(_confused_token, id="algorithm confusion"),
        pytest.param(lambda: _stranger_token(KEY.kid), id="known kid, other key"),
        pytest.param(lambda: _stranger_token("unknown"), id="unknown kid"),
    ],
)
async def test_invalid_tokens_are_401_invalid_token(anonymous: httpx.AsyncClient, bad) -> None:  # type: ignore[no-untyped-def]
    response = await anonymous.post(
        f"{API}/authors", json={"name": "X"}, headers={"Authorization": f"Bearer {bad()}"}
    )
    _unauthorized(response, token_sent=True)
    assert (await anonymous.get(f"{API}/authors")).json()["items"] == []


async def test_a_malformed_authorization_header_is_401(anonymous: httpx.AsyncClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", token()):
        response = await anonymous.post(
            f"{API}/authors", json={"name": "X"}, headers={"Authorization": value}
        )
        _unauthorized(response, token_sent=True)


async def test_clock_skew_within_5_seconds_is_tolerated(anonymous: httpx.AsyncClient) -> None:
    expired_just_now = token(ttl=1, now=time.time() - 4)
    response = await anonymous.post(
        f"{API}/authors",
        json={"name": "Skewed"},
        headers={"Authorization": f"Bearer {expired_just_now}"},
    )
    assert response.status_code == 201, response.text


async def test_scopes_decide_what_a_valid_token_may_do(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    writer = bearer("catalog:write")
    response = await anonymous.post(f"{API}/authors", json={"name": "W"}, headers=writer)
    assert response.status_code == 201
    url = f"{API}/authors/{response.json()['id']}"
    patched = await anonymous.patch(
        url, json={"bio": "b"}, headers={**writer, **await if_match(anonymous, url)}
    )
    assert patched.status_code == 200
    denied = await anonymous.delete(url, headers={**writer, "If-Match": "*"})
    body = assert_problem(denied, 403, "insufficient-scope")
    assert body["type"].endswith("insufficient-scope")
    assert denied.headers["www-authenticate"] == (
        'Bearer realm="library", error="insufficient_scope", scope="catalog:admin"'
    )
    reader = bearer("catalog:read")
    denied = await anonymous.post(f"{API}/authors", json={"name": "R"}, headers=reader)
    assert_problem(denied, 403, "insufficient-scope")
    assert 'scope="catalog:write"' in denied.headers["www-authenticate"]
    admin = bearer("catalog:admin")
    deleted = await anonymous.delete(url, headers={**admin, "If-Match": "*"})
    assert deleted.status_code == 204


async def test_reads_can_require_catalog_read(settings: Settings) -> None:
    required = settings.model_copy(update={"auth_reads": "required"})
    async with running_app(required) as (_, client):
        author = await create_author(client, "Private")
        paths = [
            "/authors",
            f"/authors/{author['id']}",
            f"/authors/{author['id']}/books",
            "/books",
            "/books/00000000-0000-0000-0000-000000000000",
        ]
        for path in paths:
            no_token = await client.get(f"{API}{path}", headers={"Authorization": ""})
            assert no_token.status_code == 401, path
            writer = await client.get(f"{API}{path}", headers=bearer("catalog:write"))
            assert_problem(writer, 403, "insufficient-scope")
            assert 'scope="catalog:read"' in writer.headers["www-authenticate"]
            reader = await client.get(f"{API}{path}", headers=bearer("catalog:read"))
            assert reader.status_code in (200, 404), path
        assert (await client.get("/health/live")).status_code == 200


def test_the_openapi_declares_the_scheme_and_each_operations_scopes(settings: Settings) -> None:
    spec = create_app(settings).openapi()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    operations = spec["paths"]
    for path, method, scope in [
        ("/api/v1/authors", "post", "catalog:write"),
        ("/api/v1/books", "post", "catalog:write"),
        ("/api/v1/authors/{author_id}", "patch", "catalog:write"),
        ("/api/v1/books/{book_id}", "patch", "catalog:write"),
        ("/api/v1/authors/{author_id}", "delete", "catalog:admin"),
        ("/api/v1/books/{book_id}", "delete", "catalog:admin"),
    ]:
        operation = operations[path][method]
        assert operation["security"] == [{"bearerAuth": [scope]}], (path, method)
        assert {"401", "403"} <= operation["responses"].keys()
    assert "security" not in operations["/api/v1/books"]["get"]
    required = create_app(settings.model_copy(update={"auth_reads": "required"})).openapi()
    assert required["paths"]["/api/v1/books"]["get"]["security"] == [
        {"bearerAuth": ["catalog:read"]}
    ]


def test_outside_development_the_server_refuses_to_start_without_keys(
    settings: Settings, tmp_path: Path
) -> None:
    bare = settings.model_copy(
        update={"auth_jwks_file": None, "auth_issuer": None, "auth_audience": None}
    )
    for environment in ("production", "test"):
        with pytest.raises(RuntimeError, match="LIBRARY_AUTH_JWKS_FILE"):
            create_app(bare.model_copy(update={"environment": environment}))
    with pytest.raises(RuntimeError, match="development"):
        create_app(bare.model_copy(update={"environment": "production", "auth_disabled": True}))
    create_app(bare.model_copy(update={"environment": "development", "auth_disabled": True}))
    # A shared secret (HS256) is for development only.
    shared = tmp_path / "hs256.json"
    secret = {"kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    shared.write_text(json.dumps({"keys": [secret]}))
    with_secret = settings.model_copy(update={"auth_jwks_file": shared})
    with pytest.raises(RuntimeError, match="HS256"):
        create_app(with_secret.model_copy(update={"environment": "production"}))
    create_app(with_secret.model_copy(update={"environment": "development"}))


async def test_auth_disabled_in_development_lets_anyone_write(settings: Settings) -> None:
    off = settings.model_copy(update={"environment": "development", "auth_disabled": True})
    async with running_app(off) as (_, client):
        response = await client.post(
            f"{API}/authors", json={"name": "Open"}, headers={"Authorization": ""}
        )
        assert response.status_code == 201


def test_auth_settings_are_the_tests_own() -> None:
    assert AUTH_SETTINGS["auth_jwks_file"] == KEY.jwks_file
