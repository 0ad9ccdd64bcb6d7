"""Where the integration tests get their PostgreSQL from, in order:

1. ``TEST_DATABASE_URL`` when set: a scratch database the tests may empty (the role must also
   be allowed to create databases: the migration tests use ``<name>_migrations`` beside it);
2. a testcontainers ``PostgresContainer`` when a Docker engine answers a ping;
3. the embedded PostgreSQL (``shared.devdb``) in ``.pgdata/test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from shared.settings import Settings

APP_DATABASE = "library_test"
TEST_DATA_DIR = Path(__file__).resolve().parents[2] / ".pgdata" / "test"


async def connect_url(url: URL, **options: Any) -> asyncpg.Connection:
    """A plain asyncpg connection (outside any pool) to ``url``, a socket or a TCP host."""
    host = url.query.get("host") or url.host
    return await asyncpg.connect(
        host=host if isinstance(host, str) else None,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
        **options,
    )


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server the tests may create databases on."""

    source: str
    admin_url: URL  # asyncpg URL of a database to connect to for CREATE/DROP DATABASE
    app_database: str  # the database the application tests run on
    owns_app_database: bool  # True when we create it (and drop it at the end)

    def database_url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    async def _admin(self) -> asyncpg.Connection:
        return await connect_url(self.admin_url)

    @property
    def migrations_database(self) -> str:
        """An empty database of their own for the migration tests."""
        return f"{self.app_database}_migrations"

    def version(self) -> str:
        async def run() -> str:
            conn = await self._admin()
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        return asyncio.run(run())

    def recreate_database(self, name: str) -> None:
        """Drop database ``name`` if it exists and create it empty."""

        async def run() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(run())

    def drop_database(self, name: str) -> None:
        async def run() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # no engine to ask (and docker-py leaks a socket when it asks in vain)
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False
    finally:
        # docker-py leaves the socket of a failed connection to the garbage collector: collect
        # it now, quietly, rather than in the middle of whichever test runs next.
        hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
        try:
            gc.collect()
        finally:
            sys.unraisablehook = hook


@contextlib.contextmanager
def provide_server() -> Iterator[Server]:
    """The server for this test session (stopped at the end when we started it)."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        url = make_url(Settings(database_url=explicit).require_database_url())
        yield Server(
            source=f"TEST_DATABASE_URL ({url.host or 'socket'}:{url.port or 5432}/{url.database})",
            admin_url=url,
            app_database=str(url.database),
            owns_app_database=False,
        )
        return
    if _docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:18-alpine", driver="asyncpg") as container:
            url = make_url(container.get_connection_url())
            yield Server(
                source="testcontainers (postgres:18-alpine)",
                admin_url=url,
                app_database=APP_DATABASE,
                owns_app_database=True,
            )
        return
    from shared import devdb

    socket_dir, user = devdb.start(TEST_DATA_DIR)
    url = make_url(devdb.url(socket_dir, user, "postgres"))
    yield Server(
        source=f"embedded PostgreSQL ({TEST_DATA_DIR})",
        admin_url=url,
        app_database=APP_DATABASE,
        owns_app_database=True,
    )
