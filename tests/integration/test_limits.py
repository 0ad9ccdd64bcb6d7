"""Limits: no unbounded work. Bodies are capped (413); the database never makes a request hang
(pool, statement and lock timeouts), and every such refusal is a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import bearer
from tests.integration.helpers import API, assert_problem, create_author


@asynccontextmanager
async def serving(
    settings: Settings, **changes: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app on ``settings`` with ``changes``, lifespan included."""
    container = RootContainer()
    container.settings.override(settings.model_copy(update=changes))
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as http:
            yield app, http


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503, "database-unavailable")
    assert int(response.headers["retry-after"]) > 0


# --- request bodies -----------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_by_its_content_length(
    settings: Settings, clean_database: None
) -> None:
    async with serving(settings, max_request_body_bytes=2048) as (_, client):
        small = await client.post(f"{API}/authors", json={"name": "Small", "bio": "x" * 1500})
        assert small.status_code == 201
        big = await client.post(f"{API}/authors", json={"name": "Big", "bio": "x" * 2500})
        body = assert_problem(big, 413)
        assert "2048 bytes" in body["detail"]
        assert big.headers["x-request-id"]


async def test_a_chunked_body_over_the_limit_is_413(
    settings: Settings, clean_database: None, engine: AsyncEngine
) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        payload = ('{"name": "Streamed", "bio": "' + "x" * total + '"}').encode()
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    async with serving(settings, max_request_body_bytes=2048) as (_, client):
        headers = {"content-type": "application/json"}
        fits = await client.post(f"{API}/authors", content=chunks(1500), headers=headers)
        assert fits.status_code == 201, fits.text
        assert "content-length" not in fits.request.headers
        over = await client.post(f"{API}/authors", content=chunks(5000), headers=headers)
        assert_problem(over, 413)
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM authors")) == 1


# --- the database -------------------------------------------------------------------------


@asynccontextmanager
async def row_locked(engine: AsyncEngine, author_id: str) -> AsyncIterator[None]:
    """Another transaction holds the author's row lock for the duration."""
    async with engine.connect() as conn:
        await conn.execute(
            text("SELECT 1 FROM authors WHERE id = :id FOR UPDATE"), {"id": author_id}
        )
        yield
        await conn.rollback()


async def test_a_statement_over_statement_timeout_is_503(
    settings: Settings, clean_database: None, engine: AsyncEngine
) -> None:
    async with serving(settings, db_statement_timeout_ms=300, db_lock_timeout_ms=0) as (_, client):
        author = await create_author(client, "Locked")
        url = f"{API}/authors/{author['id']}"
        async with row_locked(engine, author["id"]), asyncio.timeout(10):
            response = await client.patch(url, json={"bio": "x"}, headers={"If-Match": '"1"'})
        assert_unavailable(response)
        assert (await client.get(url)).json()["version"] == 1


async def test_a_lock_held_past_lock_timeout_is_503(
    settings: Settings, clean_database: None, engine: AsyncEngine
) -> None:
    async with serving(settings, db_statement_timeout_ms=0, db_lock_timeout_ms=300) as (_, client):
        author = await create_author(client, "Locked")
        url = f"{API}/authors/{author['id']}"
        async with row_locked(engine, author["id"]), asyncio.timeout(10):
            response = await client.delete(url, headers={"If-Match": '"1"'})
        assert_unavailable(response)
        assert (await client.get(url)).status_code == 200


async def test_an_exhausted_pool_is_a_quick_503(settings: Settings, clean_database: None) -> None:
    async with serving(
        settings,
        db_pool_size=1,
        db_max_overflow=0,
        db_read_pool_size=1,
        db_pool_timeout_seconds=0.3,
    ) as (app, client):
        engine: AsyncEngine = app.state.container.engine()
        reads = app.state.container.read_pool()
        async with engine.connect():  # the write pool's only connection
            started = time.monotonic()
            write = await client.post(f"{API}/authors", json={"name": "Waiting"})
            assert time.monotonic() - started < 5
        async with reads.connection():  # the read pool's only connection
            started = time.monotonic()
            read = await client.get(f"{API}/authors")
            assert time.monotonic() - started < 5
        assert_unavailable(write)
        assert_unavailable(read)
        assert (await client.get(f"{API}/authors")).status_code == 200
        assert (await client.post(f"{API}/authors", json={"name": "Served"})).status_code == 201


async def test_a_database_that_does_not_answer_is_503(settings: Settings) -> None:
    down = "postgresql+asyncpg://nobody@127.0.0.1:9/none"
    unreachable = {
        "database_url": SecretStr(down),
        "db_connect_timeout_seconds": 1,
        # A replica (TEST_CLUSTER=1) is down too: the whole database does not answer.
        "replica_database_url": None if settings.replica_database_url is None else SecretStr(down),
    }
    async with serving(settings, **unreachable) as (_, client):
        for response in (
            await client.get(f"{API}/authors"),
            await client.post(f"{API}/authors", json={"name": "Lost"}),
        ):
            assert_unavailable(response)


@pytest.mark.parametrize(
    ("name", "setting", "expected"),
    [
        ("statement_timeout", "db_statement_timeout_ms", "1500ms"),
        ("lock_timeout", "db_lock_timeout_ms", "700ms"),
        ("idle_in_transaction_session_timeout", "db_idle_in_transaction_timeout_ms", "2500ms"),
    ],
)
async def test_every_connection_carries_the_configured_timeouts(
    settings: Settings, name: str, setting: str, expected: str
) -> None:
    values = {
        "db_statement_timeout_ms": 1500,
        "db_lock_timeout_ms": 700,
        "db_idle_in_transaction_timeout_ms": 2500,
    }
    # On PostgreSQL itself: through a transaction-mode pooler (TEST_CLUSTER=1) they are the
    # role's or PgBouncer's connect_query, not sent by the app (docs/operations.md).
    async with serving(settings.direct(), replica_database_url=None, **values) as (app, _):
        engine: AsyncEngine = app.state.container.engine()
        async with engine.connect() as conn:
            shown = await conn.scalar(text(f"SHOW {name}"))
    assert shown == expected, setting
