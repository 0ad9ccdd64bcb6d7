"""The API through PgBouncer in transaction mode (LIBRARY_DB_POOLER=transaction).

A real PgBouncer (Debian's 1.18, no prepared-statement support of its own) lends each of
its few server connections to one client transaction at a time: a statement prepared under a
name on one server session is then missing, or already taken, on the next. These tests run the
API's writes and reads through it, many clients at once, and check that the relay (which needs
a session of its own) still delivers on its direct URL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import bearer
from tests.integration.helpers import API, create_author, create_book, if_match
from tools.pgbouncer import SERVER_POOL_SIZE, PgBouncer, connect_query

APPLICATION_NAME = "library-pooled"


@pytest.fixture(scope="module")
def pgbouncer(
    app_database_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgBouncer]:
    folder = tmp_path_factory.mktemp("pgbouncer")
    with PgBouncer(app_database_url, folder, connect_query(settings)) as bouncer:
        yield bouncer


@pytest.fixture(scope="module")
def pooled_settings(settings: Settings, pgbouncer: PgBouncer, app_database_url: str) -> Settings:
    return Settings(
        **{
            **settings.model_dump(),
            "database_url": pgbouncer.url(),
            "db_pooler": "transaction",
            "direct_database_url": app_database_url,
            "db_application_name": APPLICATION_NAME,
        }
    )


@pytest.fixture(scope="module")
async def pooled_app(pooled_settings: Settings) -> AsyncIterator[FastAPI]:
    container = RootContainer()
    container.settings.override(pooled_settings)
    application = create_app(container=container)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def pooled(
    pooled_app: FastAPI, clean_database: None, read_after_every_write: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app whose DATABASE_URL is PgBouncer's, on emptied tables (with
    TEST_CLUSTER=1 the app reads from the replica: the client sends Commit-LSN, as the suite's
    others do, and reads its own writes)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=pooled_app),
        base_url="http://testserver",
        headers=bearer(),
        event_hooks=read_after_every_write,
    ) as http:
        yield http


async def test_creates_reads_lists_and_updates_through_the_pooler(
    pooled: httpx.AsyncClient,
) -> None:
    author = await create_author(pooled, "Ursula K. Le Guin", birth_year=1929)
    book = await create_book(pooled, "The Dispossessed", [author["id"]], isbn="9780061054884")
    got = await pooled.get(f"{API}/books/{book['id']}")
    assert got.status_code == 200, got.text
    assert got.json()["title"] == "The Dispossessed"
    assert [a["name"] for a in got.json()["authors"]] == ["Ursula K. Le Guin"]
    # The same statements again: a statement cache would now reuse what it prepared.
    for _ in range(3):
        listed = await pooled.get(f"{API}/books", params={"author_id": author["id"]})
        assert listed.status_code == 200, listed.text
        assert [b["id"] for b in listed.json()["items"]] == [book["id"]]
    url = f"{API}/books/{book['id']}"
    patched = await pooled.patch(
        url,
        json={"title": "The Dispossessed: An Ambiguous Utopia"},
        headers=await if_match(pooled, url),
    )
    assert patched.status_code == 200, patched.text
    assert (await pooled.get(url)).json()["title"] == "The Dispossessed: An Ambiguous Utopia"
    ready = await pooled.get("/health/ready")
    assert ready.status_code == 200, ready.text


async def test_an_idempotent_post_replays_through_the_pooler(
    pooled: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await pooled.post(f"{API}/authors", json={"name": "Octavia E. Butler"}, headers=key)
    assert first.status_code == 201, first.text
    again = await pooled.post(f"{API}/authors", json={"name": "Octavia E. Butler"}, headers=key)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM authors")) == 1


async def test_many_clients_share_a_few_server_connections_without_a_statement_clash(
    pooled: httpx.AsyncClient, pooled_app: FastAPI, engine: AsyncEngine, settings: Settings
) -> None:
    author = await create_author(pooled, "N. K. Jemisin")

    async def write(n: int) -> httpx.Response:
        return await pooled.post(
            f"{API}/books", json={"title": f"Book {n}", "author_ids": [author["id"]]}
        )

    async def read(n: int) -> httpx.Response:
        if n % 2:
            return await pooled.get(f"{API}/authors/{author['id']}")
        return await pooled.get(f"{API}/books", params={"author_id": author["id"], "limit": 5})

    server_sessions: list[int] = []
    role = make_url(settings.require_database_url()).username

    async def count_server_sessions() -> None:
        while True:
            async with engine.connect() as conn:
                count = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE usename = :role AND application_name = :name"
                    ),
                    {"role": role, "name": APPLICATION_NAME},
                )
            server_sessions.append(int(count or 0))
            await asyncio.sleep(0.02)

    counting = asyncio.create_task(count_server_sessions())
    try:
        for _ in range(3):  # rounds: the second and third meet the connections the first opened
            responses = await asyncio.gather(
                *(write(n) for n in range(20)), *(read(n) for n in range(40))
            )
            assert all(r.status_code in (200, 201) for r in responses), [
                r.text for r in responses if r.status_code >= 300
            ]
    finally:
        counting.cancel()
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM books")) == 60
    # The app opened more connections than PgBouncer has server connections for them.
    container = pooled_app.state.container
    used, idle, _, _ = container.read_pool().usage()
    opened = used + idle + container.engine().sync_engine.pool.checkedin()
    assert opened > SERVER_POOL_SIZE
    assert max(server_sessions) <= SERVER_POOL_SIZE


async def test_session_settings_hold_through_the_pooler(
    pooled: httpx.AsyncClient, pooled_app: FastAPI
) -> None:
    """statement_timeout and the others, which a client of PgBouncer 1.18 cannot send, are set
    on the server connections (here by PgBouncer's connect_query)."""
    await create_author(pooled, "Anyone")  # the app has opened its connections
    container = pooled_app.state.container
    row = await container.read_pool().fetchrow(
        "SELECT current_setting('statement_timeout') AS statement_timeout,"
        " current_setting('pg_trgm.word_similarity_threshold') AS typo,"
        " current_setting('TimeZone') AS zone"
    )
    assert row is not None
    assert dict(row) == {"statement_timeout": "15s", "typo": "0.5", "zone": "UTC"}


async def test_the_relay_delivers_on_its_direct_connection(pooled: httpx.AsyncClient) -> None:
    """The outbox relay LISTENs and takes session locks: it keeps a direct connection, and a
    renamed author still reaches the books crediting it."""
    author = await create_author(pooled, "Old Name")
    book = await create_book(pooled, "Renamed", [author["id"]])
    url = f"{API}/authors/{author['id']}"
    renamed = await pooled.patch(
        url, json={"name": "New Name"}, headers=await if_match(pooled, url)
    )
    assert renamed.status_code == 200, renamed.text
    deadline = time.monotonic() + 20
    while True:
        names = [
            a["name"] for a in (await pooled.get(f"{API}/books/{book['id']}")).json()["authors"]
        ]
        if names == ["New Name"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert names == ["New Name"]
