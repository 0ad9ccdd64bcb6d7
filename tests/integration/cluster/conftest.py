"""The cluster of ``make run-cluster`` (``tools.cluster``), for the replica tests: an embedded
PostgreSQL 18 primary, a streaming replica made by ``pg_basebackup -R``, PgBouncer in
transaction mode in front of the primary. Started once per session in a temporary folder; it
needs neither TEST_DATABASE_URL nor Docker. Never skipped: a missing binary fails the tests
with what to install.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS, bearer
from tools.cluster import Cluster

APPLICATION_NAME = "library-cluster"


def cluster_folder() -> Iterator[Path]:
    """A folder of its own under /tmp, not under pytest's: the servers run as another user
    (the wheel's, as root), and every pytest session starting on the machine makes
    /tmp/pytest-of-<user> private again (0700), which would lock them out of their data."""
    folder = Path(tempfile.mkdtemp(prefix="library-cluster-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    for folder in cluster_folder():
        try:
            running = Cluster(folder)
        except RuntimeError as exc:
            pytest.fail(f"the cluster cannot start: {exc}")
        with running:
            yield running


def cluster_settings(cluster: Cluster, **overrides: Any) -> Settings:
    """An app on the cluster: PgBouncer for the requests, the primary for the relay, the replica
    for reads."""
    env = cluster.app_environment()
    return Settings(
        database_url=env["LIBRARY_DATABASE_URL"],
        db_pooler="transaction",
        direct_database_url=env["LIBRARY_DIRECT_DATABASE_URL"],
        replica_database_url=env["LIBRARY_REPLICA_DATABASE_URL"],
        environment="test",
        log_format="json",
        db_application_name=APPLICATION_NAME,
        db_pool_timeout_seconds=10,
        **{**AUTH_SETTINGS, **overrides},
    )


class CommitLsnEcho:
    """What a well-behaved client does: it sends the latest Commit-LSN a write gave it on every
    later request (httpx event hooks)."""

    def __init__(self) -> None:
        self.latest: str | None = None

    async def on_request(self, request: httpx.Request) -> None:
        if self.latest is not None and "commit-lsn" not in request.headers:
            request.headers["Commit-LSN"] = self.latest

    async def on_response(self, response: httpx.Response) -> None:
        lsn = response.headers.get("commit-lsn")
        if lsn is not None:
            self.latest = lsn


@asynccontextmanager
async def cluster_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the cluster (lifespan included) and a client that echoes Commit-LSN."""
    container = RootContainer()
    container.settings.override(settings)
    app = create_app(container=container)
    echo = CommitLsnEcho()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers=bearer(),
            event_hooks={"request": [echo.on_request], "response": [echo.on_response]},
        ) as http,
    ):
        yield app, http


async def owner_connection(url: str) -> asyncpg.Connection:
    """A connection as the servers' owner (postgres) to the database of ``url``."""
    parsed = make_url(url).set(drivername="postgresql", username="postgres")
    return await asyncpg.connect(parsed.render_as_string(hide_password=False))


async def eventually(check: Any, seconds: float = 15, every: float = 0.1) -> Any:
    """The first truthy result of ``await check()`` within ``seconds`` (AssertionError after)."""
    deadline = asyncio.get_running_loop().time() + seconds
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(every)
    raise AssertionError(f"not within {seconds} s; last: {last!r}")


async def databases(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """/health/ready's databases, by name."""
    body = (await http.get("/health/ready")).json()
    return {entry["name"]: entry for entry in body.get("databases", [])}
