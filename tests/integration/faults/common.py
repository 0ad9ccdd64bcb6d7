"""Helpers the fault tests share: an app with a name of its own, and its sessions in PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from sqlalchemy.engine import make_url

from tests.integration.postgres import Server, connect_url


def unique_application_name() -> str:
    """An application_name no other session on the server has: only ours get killed or counted."""
    return f"library-fault-{uuid.uuid4().hex[:12]}"


async def connect(database_url: str) -> asyncpg.Connection:
    """A plain asyncpg connection (outside any pool) to the database of ``database_url``."""
    return await connect_url(
        make_url(database_url), server_settings={"application_name": "library-fault-test"}
    )


@contextlib.asynccontextmanager
async def app_servers(server: Server, database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """A connection to each server the app's pooled connections end on: the test database's.
    With TEST_CLUSTER=1, the primary's (where PgBouncer's server connections serve the app's
    writes: PgBouncer sets on each the application_name of the client it lends it to, so they
    go by the app's name) and the replica's (the read pool's)."""
    places = [database_url]
    if server.cluster is not None:
        replica = make_url(database_url).set(
            host="127.0.0.1", port=server.cluster.replica_port, query={}
        )
        places.append(replica.render_as_string(hide_password=False))
    admins: list[asyncpg.Connection] = []
    try:
        for url in places:
            admins.append(await connect(url))
        yield admins
    finally:
        for admin in admins:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                await admin.close(timeout=2)


async def sessions(conn: asyncpg.Connection, application_name: str) -> list[asyncpg.Record]:
    """The app's backends: pid, state, wait_event_type."""
    return await activity(
        conn,
        "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = $1",
        application_name,
    )


async def activity(conn: asyncpg.Connection, query: str, *args: object) -> list[asyncpg.Record]:
    """``query`` on pg_stat_activity as it is now, even when ``conn`` is in a transaction (a
    test holding a lock): PostgreSQL takes the backends' list once per transaction, on first
    access, and a backend that connects later is missing from every poll after it (a write
    that opened a fresh pooled connection to wait on the lock was never seen)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    rows: list[asyncpg.Record] = await conn.fetch(query, *args)
    return rows


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, seconds: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)
