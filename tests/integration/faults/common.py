"""Helpers the fault tests share: an app with a name of its own, and its sessions in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy.engine import make_url

from tests.integration.postgres import connect_url


def unique_application_name() -> str:
    """An application_name no other session on the server has: only ours get killed or counted."""
    return f"library-fault-{uuid.uuid4().hex[:12]}"


async def connect(database_url: str) -> asyncpg.Connection:
    """A plain asyncpg connection (outside any pool) to the database of ``database_url``."""
    return await connect_url(
        make_url(database_url), server_settings={"application_name": "library-fault-test"}
    )


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
