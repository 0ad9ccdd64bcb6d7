"""Small helpers for the HTTP tests: create resources, check problem documents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import bearer

API = "/api/v1"

# The tables every test empties (books first: their credits go with them, ON DELETE CASCADE, and
# the credits' trigger then finds no book to refresh, so no book is updated: a test counts the
# updates of its own transaction, and a backend's unflushed counts show there).
TABLES = (
    "books",
    "credited_author_names",
    "authors",
    "idempotency_keys",
    "events",
    "relay_positions",  # a running relay starts its subscribers again from the start
    "events_pruned",
)


async def vacuum(engine: AsyncEngine, tables: tuple[str, ...] = TABLES) -> None:
    """VACUUM the tables (what autovacuum would do; writes go on meanwhile)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"VACUUM {', '.join(tables)}"))


_RELAY_BEHIND = text(
    """
    SELECT count(*) FROM events
    WHERE NOT EXISTS (
        SELECT 1 FROM relay_positions p
        WHERE p.subscriber = 'books.credited_names' AND (p.xid, p.id) >= (events.xid, events.id)
    )
    """
)


async def relay_caught_up(engine: AsyncEngine, seconds: float = 20) -> None:
    """Return once the books' keeper has handled every recorded event (the app's relay is then
    idle: it holds no transaction and no row), or fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with engine.connect() as conn:
            behind = await conn.scalar(_RELAY_BEHIND)
        if not behind:
            return
        assert asyncio.get_running_loop().time() < deadline, f"the relay is {behind} events behind"
        await asyncio.sleep(0.05)


async def create_author(
    client: httpx.AsyncClient, name: str = "Ursula K. Le Guin", **fields: Any
) -> dict[str, Any]:
    response = await client.post(f"{API}/authors", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_book(
    client: httpx.AsyncClient, title: str, author_ids: list[str], **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/books", json={"title": title, "author_ids": author_ids, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and problem type ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if code is not None:
        assert body["type"] == f"urn:library:problem:{code}"
    return body


def error_locs(body: dict[str, Any]) -> list[list[str | int]]:
    return [error["loc"] for error in body["errors"]]


async def if_match(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    """An If-Match header naming the resource's current ETag (read with a GET).

    For a resource that does not exist, a made-up tag: the write answers 404 (or 422) anyway.
    """
    response = await client.get(url)
    return {"If-Match": response.headers.get("ETag", '"1"')}


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app (lifespan included) and an in-process client."""
    container = RootContainer()
    container.settings.override(settings)
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as http:
            yield app, http
