"""Integration fixtures: a real PostgreSQL, migrated by Alembic, emptied before each test."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from library.cli.database import grant_app_role
from shared.persistence.db import create_engine, create_session_factory, server_settings
from shared.persistence.reads import ReadPool
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS, bearer
from tests.integration.faults.server import ServerProcess
from tests.integration.helpers import TABLES, vacuum
from tests.integration.postgres import Server, notice_for, provide_server

_source: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _source:
        terminalreporter.write_line(f"PostgreSQL used by the integration tests: {_source[0]}")


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[Server]:
    notice = notice_for(pytestconfig)
    with provide_server(notice) as server:
        if server.owns_app_database:
            server.recreate_database(server.app_database)
        _source.append(f"{server.source}, server {server.version()}")
        notice(f"PostgreSQL for the integration tests: {_source[0]}")
        yield server
        if server.owns_app_database:
            server.drop_database(server.app_database)
            server.drop_role(f"{server.app_database}_app")  # app_database_url's role


def alembic_config(database_url: str) -> Config:
    config = Config("alembic.ini")
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def database_url(postgres_server: Server) -> str:
    """The asyncpg URL of the test database, migrated to head by the project's migrations."""
    url = postgres_server.database_url(postgres_server.app_database)
    command.upgrade(alembic_config(url), "head")
    return url


APP_ROLE_PASSWORD = "library-test-app"


@pytest.fixture(scope="session")
def app_database_url(postgres_server: Server, database_url: str) -> str:
    """The test database as the server's role sees it: it may read and write rows, no more
    (docs/guarantees.md "Least privilege"). Named after the database, so that runs sharing a server
    (other checkouts, CI) never share a role."""
    role = f"{postgres_server.app_database}_app"
    grant_app_role(database_url, role, create_password=APP_ROLE_PASSWORD)
    url = make_url(database_url).set(username=role, password=APP_ROLE_PASSWORD)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def cluster_routes(
    postgres_server: Server, app_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """With TEST_CLUSTER=1, the settings that put the app on the cluster: DATABASE_URL is a
    PgBouncer (transaction mode) in front of the test database, the relay's URL the primary
    itself, and reads go to the replica. Empty otherwise."""
    cluster = postgres_server.cluster
    if cluster is None:
        yield {}
        return
    from tools.pgbouncer import PgBouncer, connect_query

    base = Settings(environment="test")
    folder = Path(tempfile.mkdtemp(prefix="library-test-pgbouncer-"))
    with PgBouncer(app_database_url, folder, connect_query(base), query_wait_timeout=5) as bouncer:
        replica = make_url(app_database_url).set(host="127.0.0.1", port=cluster.replica_port)
        yield {
            "database_url": bouncer.url(),
            "db_pooler": "transaction",
            "direct_database_url": app_database_url,
            "replica_database_url": replica.set(query={}).render_as_string(hide_password=False),
        }
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(app_database_url: str, cluster_routes: dict[str, Any]) -> Settings:
    """The app's settings: it connects as the least-privileged role (with TEST_CLUSTER=1,
    through PgBouncer, reading from the replica)."""
    return Settings(
        **{
            "database_url": app_database_url,
            **AUTH_SETTINGS,
            **cluster_routes,  # overrides database_url with TEST_CLUSTER=1
        },
        environment="test",
        log_format="json",
        # The race tests send 50 requests at once: the pool holds them all (and waits long on
        # a loaded machine), so they measure the version check, not the pool. test_limits
        # shrinks the pool where the pool is the subject.
        db_pool_size=25,
        db_max_overflow=30,
        db_pool_timeout_seconds=15,
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The tests' own engine, as the schema's owner (it empties tables, reads plans...)."""
    engine = create_engine(settings.model_copy(update={"database_url": SecretStr(database_url)}))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def read_pool(settings: Settings) -> AsyncIterator[ReadPool]:
    """The read side's pool on the test database, as the app builds it (the app's role); on
    the primary, also with TEST_CLUSTER=1 (the tests read straight after their own SQL)."""
    settings = settings.model_copy(update={"replica_database_url": None})
    pool = ReadPool(settings, server_settings(settings))
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def autovacuum_off(engine: AsyncEngine) -> bool:
    """Whether the server runs without autovacuum (the machine's PostgreSQL 15 here does): then
    nothing removes the dead rows the tests leave, and the tests vacuum themselves."""
    async with engine.connect() as conn:
        setting = await conn.scalar(text("SELECT current_setting('autovacuum')"))
    return bool(setting == "off")


@pytest.fixture
async def clean_database(engine: AsyncEngine, autovacuum_off: bool) -> None:
    """Every test starts from empty tables (schema kept), whatever ran before it."""
    # DELETE, not TRUNCATE: the tables hold a few rows between tests, and TRUNCATE gives each
    # table and index a new file (and scans shared buffers for each one): 150-500 ms a test
    # here, against about 15 ms.
    async with engine.begin() as conn:
        for table in TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))
    if autovacuum_off:
        # Without autovacuum the deleted rows stay, test after test: the scans and foreign-key
        # checks of every later test walk them (a CI run on PostgreSQL 15 crawled, then hung).
        await vacuum(engine)


@pytest.fixture
def session_factory(engine: AsyncEngine, clean_database: None) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture(scope="module")
async def module_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real application, lifespan included, built once per test module: building it (its
    routes' pydantic models) costs 0.1-0.2 s, which per test was a fifth of the integration
    suite. Tests that change the app or its pools build their own."""
    application = create_app(container=_container(settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app(module_app: FastAPI, clean_database: None) -> FastAPI:
    """The real application on the test database, whose tables are empty."""
    return module_app


def _container(settings: Settings) -> RootContainer:
    container = RootContainer()
    container.settings.override(settings)
    return container


@pytest.fixture(scope="session")
async def read_after_every_write(
    postgres_server: Server, database_url: str
) -> AsyncIterator[dict[str, Any]]:
    """With TEST_CLUSTER=1, the clients' event hooks: each request carries the primary's WAL
    position as it is sent, as Commit-LSN. A client that echoes the Commit-LSN of its writes
    sees them; the tests also write with SQL of their own, so their clients send the position
    of every write so far (what a client that saw them all would send). Empty otherwise."""
    if postgres_server.cluster is None:
        yield {}
        return
    conn = await asyncpg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    lock = asyncio.Lock()

    async def send_the_latest(request: httpx.Request) -> None:
        if "commit-lsn" not in request.headers:
            async with lock:
                lsn = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
            request.headers["Commit-LSN"] = lsn

    yield {"request": [send_the_latest]}
    await conn.close()


@pytest.fixture
async def client(
    app: FastAPI, read_after_every_write: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    # A client with a token holding every scope: the tests of auth itself use ``anonymous``.
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers=bearer(),
        event_hooks=read_after_every_write,
    ) as http:
        yield http


@pytest.fixture
async def anonymous(
    app: FastAPI, read_after_every_write: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks=read_after_every_write
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def live_server_process(
    app_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    """``library serve`` on a free port and the test database, with small pools, verifying the
    tests' tokens; started once (a start costs seconds)."""
    log = tmp_path_factory.mktemp("live-server") / "server.log"
    process = ServerProcess(app_database_url, "library-live", log)
    process.env.update(LIBRARY_DB_POOL_SIZE="2", LIBRARY_DB_READ_POOL_SIZE="2")
    async with process:
        yield process


@pytest.fixture
def live_server(live_server_process: ServerProcess, clean_database: None) -> ServerProcess:
    """The live server, on emptied tables."""
    return live_server_process
