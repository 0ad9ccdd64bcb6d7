"""HTTP hardening: CORS allow-list, nosniff, no-store, docs switch, trusted hosts."""

from __future__ import annotations

import httpx

from shared.settings import Settings
from tests.integration.helpers import API, assert_problem, create_author, running_app

ORIGIN = "https://catalog.example"


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/books", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        f"{API}/books",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_the_listed_origins_only(settings: Settings) -> None:
    listed = settings.model_copy(update={"cors_origins": f"{ORIGIN}, https://other.example"})
    async with running_app(listed) as (_, client):
        preflight = await client.options(
            f"{API}/authors",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, if-match, idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        allowed = preflight.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "if-match", "if-none-match", "idempotency-key"):
            assert header in allowed
        author = await create_author(client, "Cross Origin")
        response = await client.get(f"{API}/authors/{author['id']}", headers={"Origin": ORIGIN})
        exposed = response.headers["access-control-expose-headers"].lower()
        for header in (
            "etag",
            "location",
            "x-request-id",
            "idempotent-replayed",
            "retry-after",
            "ratelimit",
            "ratelimit-policy",
        ):
            assert header in exposed.split(", ") or header in exposed
        stranger = await client.get(f"{API}/books", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers


async def test_nosniff_everywhere_and_no_store_where_it_matters(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    created = await client.post(f"{API}/authors", json={"name": "Headers"})
    url = f"{API}/authors/{created.json()['id']}"
    public_read = await anonymous.get(url)
    problem = await anonymous.get(f"{API}/authors/not-a-uuid")
    authenticated_read = await client.get(url)
    for response in (created, public_read, problem, authenticated_read):
        assert response.headers["x-content-type-options"] == "nosniff"
    assert created.headers["cache-control"] == "no-store"
    assert problem.headers["cache-control"] == "no-store"
    assert authenticated_read.headers["cache-control"] == "no-store"
    assert "cache-control" not in public_read.headers  # a public read may be cached
    assert (await anonymous.get("/health/live")).headers["x-content-type-options"] == "nosniff"


async def test_docs_and_openapi_can_be_switched_off(settings: Settings) -> None:
    async with running_app(settings) as (_, client):
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/docs")).status_code == 200
    off = settings.model_copy(update={"docs_enabled": False})
    async with running_app(off) as (_, client):
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert_problem(await client.get(path), 404)
        assert (await client.get(f"{API}/books")).status_code == 200


async def test_only_trusted_hosts_are_served(settings: Settings) -> None:
    trusted = settings.model_copy(update={"trusted_hosts": "catalog.example, *.internal"})
    async with running_app(trusted) as (_, client):
        for host in ("catalog.example", "api.internal", "catalog.example:8443"):
            response = await client.get(f"{API}/books", headers={"Host": host})
            assert response.status_code == 200, host
        for host in ("evil.example", "internal", "catalog.example.evil"):
            response = await client.get(f"{API}/books", headers={"Host": host})
            assert_problem(response, 400)
        assert (await client.get("/health/live", headers={"Host": "10.0.0.7"})).status_code == 200
