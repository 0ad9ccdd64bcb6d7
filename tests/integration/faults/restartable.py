"""A PostgreSQL the restart test owns and may stop and start: never the suite's shared server.

Chosen as the suite's own server is (``tests.integration.postgres.docker_image``): a container
of ``TEST_POSTGRES_IMAGE`` of its own when Docker serves the suite, else the embedded server in
``.pgdata/fault`` (also when ``TEST_DATABASE_URL`` names a shared server, which no test may stop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from alembic import command
from sqlalchemy.engine import make_url

from tests.integration.conftest import alembic_config
from tests.integration.faults.embedded import FAULT_DATABASE, RestartablePostgres
from tests.integration.postgres import Notice, docker_image, free_port, wait_until_accepting


class Restartable(Protocol):
    """A server with a migrated database at ``database_url`` that a test may stop and start."""

    database_url: str

    async def stop(self) -> None:
        """Fast shutdown: every session is terminated, as when the server restarts."""

    async def start(self) -> None:
        """Start it again at the same address; return when it accepts connections."""


class RestartableContainer:
    """A PostgreSQL container of its own, on a fixed host port so that a restart keeps it."""

    def __init__(self, image: str) -> None:
        from testcontainers.community.postgres import PostgresContainer

        self.image = image
        self.container = PostgresContainer(image, driver="asyncpg", dbname=FAULT_DATABASE)
        self.container.with_bind_ports(5432, free_port())
        self.container.start()
        self.database_url = self.container.get_connection_url()
        command.upgrade(alembic_config(self.database_url), "head")

    def _wrapped(self) -> Any:
        return self.container.get_wrapped_container()

    def _stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown (the official image's STOPSIGNAL).
        self._wrapped().kill(signal="SIGINT")
        self._wrapped().wait(timeout=60)

    def _start(self) -> None:
        self._wrapped().start()
        wait_until_accepting(make_url(self.database_url))

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop)

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def close(self) -> None:
        self.container.stop()


@contextlib.contextmanager
def provide_restartable(notice: Notice) -> Iterator[Restartable]:
    """The restart test's own server, removed (container) or left stopped by atexit (embedded)."""
    image = docker_image(notice)
    if image is None:
        yield RestartablePostgres()
        return
    server = RestartableContainer(image)
    notice(f"PostgreSQL for the restart test: a container of its own ({image})")
    try:
        yield server
    finally:
        server.close()
