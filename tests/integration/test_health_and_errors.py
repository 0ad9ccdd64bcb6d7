"""Health probes, request ids, and the promise that no input gives a 500."""

from __future__ import annotations

import asyncio
import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.settings import Settings
from tests.auth import AUTH_SETTINGS
from tests.integration.helpers import API, assert_problem, running_app
from tests.integration.postgres import Server


async def test_live_and_ready_when_migrated(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await client.get("/health/live")).json() == {"status": "live"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    databases = ready.json()["databases"]
    if settings.replica_database_url is None:
        # Without a replica: the primary only, PostgreSQL itself.
        assert databases == [
            {"name": "primary", "role": "primary", "path": "direct", "state": "up", "lag_ms": None}
        ]
    else:  # TEST_CLUSTER=1: through PgBouncer, and the replica
        assert [(d["name"], d["path"], d["state"]) for d in databases] == [
            ("primary", "pooler", "up"),
            ("replica", "direct", "up"),
        ]


async def test_without_a_replica_commit_lsn_is_checked_and_never_answered(
    settings: Settings,
) -> None:
    async with running_app(settings.model_copy(update={"replica_database_url": None})) as (
        _,
        client,
    ):
        await _no_commit_lsn_without_a_replica(client)


async def _no_commit_lsn_without_a_replica(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{API}/authors", json={"name": "Ann Leckie"})
    assert created.status_code == 201
    assert "commit-lsn" not in created.headers  # no extra round trip to find one
    url = created.headers["Location"]
    assert (await client.get(url, headers={"Commit-LSN": "0/16B3F48"})).status_code == 200
    refused = await client.get(url, headers={"Commit-LSN": "not-an-lsn"})
    assert_problem(refused, 400)


async def _ready_with(settings: Settings) -> httpx.Response:
    async with running_app(settings) as (_, http):
        return await http.get("/health/ready")


async def test_not_ready_on_an_unmigrated_database(postgres_server: Server) -> None:
    # The server helpers are synchronous (they run their own event loop): run them in a thread.
    empty = postgres_server.migrations_database
    await asyncio.to_thread(postgres_server.recreate_database, empty)
    try:
        response = await _ready_with(
            Settings(database_url=postgres_server.database_url(empty), **AUTH_SETTINGS)
        )
    finally:
        await asyncio.to_thread(postgres_server.drop_database, empty)
    body = assert_problem(response, 503, "not-ready")
    assert "make migrate" in body["detail"]
    assert response.headers["retry-after"]


async def test_not_ready_when_the_database_does_not_answer() -> None:
    unreachable = Settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        db_connect_timeout_seconds=1,
        **AUTH_SETTINGS,
    )
    response = await _ready_with(unreachable)
    assert_problem(response, 503, "not-ready")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != "bad id\twith spaces"


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/nothing-here"), 404)
    assert_problem(await client.put(f"{API}/books"), 405)
    response = await client.post(
        f"{API}/books", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
fields = st.sampled_from(
    [
        "title",
        "author_ids",
        "isbn",
        "publication_year",
        "language",
        "name",
        "birth_year",
        "death_year",
        "bio",
        "id",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(fields, json_values, max_size=6) | json_values)
async def test_no_body_gives_a_500(client: httpx.AsyncClient, body: object) -> None:
    for method, url in (
        ("POST", f"{API}/books"),
        ("POST", f"{API}/authors"),
        ("PATCH", f"{API}/authors/00000000-0000-0000-0000-000000000000"),
    ):
        response = await client.request(
            method, url, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (method, url, body, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
