"""Helpers the fault tests share: an app with a name of its own, and its sessions in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings


def unique_application_name() -> str:
    """An application_name no other session on the server has: only ours get killed or counted."""
    return f"library-fault-{uuid.uuid4().hex[:12]}"


async def connect(database_url: str) -> asyncpg.Connection:
    """A plain asyncpg connection (outside any pool) to the database of ``database_url``."""
    url = make_url(database_url)
    host = url.query.get("host") or url.host
    return await asyncpg.connect(
        host=host if isinstance(host, str) else None,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
        server_settings={"application_name": "library-fault-test"},
    )


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app (lifespan included) and an in-process client."""
    container = RootContainer()
    container.settings.override(settings)
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def sessions(conn: asyncpg.Connection, application_name: str) -> list[asyncpg.Record]:
    """The app's backends: pid, state, wait_event_type."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = $1",
        application_name,
    )
    return rows


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, seconds: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)
