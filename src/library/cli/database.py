"""The database a command runs on: the embedded development one, and the server's role.

Without a configured DATABASE_URL, ``dev``, ``revision``, ``import``, ``export`` (and
``migrate``/``seed`` with ``--embedded-if-unset``) start the embedded PostgreSQL
(``tools.devdb``) and point the settings at it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DEV_DATA_DIR = Path(".pgdata/dev")
DEV_DATABASE = "library"
# The role the development server connects as (reads and writes rows; no DDL).
DEV_APP_ROLE = "library_app"


def grant_app_role(owner_url: str, role: str, *, create_password: str | None = None) -> None:
    """As the schema's owner: let the server's ``role`` read and write rows, nothing more
    (created first, with ``create_password``, when that is given)."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    from shared.persistence.roles import ensure_login_role, grant_row_access

    async def run() -> None:
        url = make_url(owner_url).set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            if create_password is not None:
                await ensure_login_role(conn, role, create_password or None)
            await grant_row_access(conn, role)
        finally:
            await conn.close()

    asyncio.run(run())


def use_embedded_database(*, least_privilege: bool = False) -> None:
    """Start the embedded development PostgreSQL and point the settings at it.

    ``least_privilege`` (the server, ``make run``): migrations run as the embedded server's
    owner, and the server connects as DEV_APP_ROLE, which may only read and write rows.
    """
    from tools import devdb

    print(f"Starting the embedded PostgreSQL in {DEV_DATA_DIR}/ ...", flush=True)
    socket_dir, user = devdb.start(DEV_DATA_DIR.resolve())
    devdb.create_database(socket_dir, user, DEV_DATABASE)
    owner_url = devdb.url(socket_dir, user, DEV_DATABASE)
    os.environ["LIBRARY_DATABASE_URL"] = owner_url
    if least_privilege:
        # The role is created here (the embedded server is ours); `library migrate` grants it.
        grant_app_role(owner_url, DEV_APP_ROLE, create_password="")  # nosec B106
        os.environ["LIBRARY_MIGRATION_DATABASE_URL"] = owner_url
        os.environ["LIBRARY_DB_APP_ROLE"] = DEV_APP_ROLE
        os.environ["LIBRARY_DATABASE_URL"] = devdb.url(socket_dir, DEV_APP_ROLE, DEV_DATABASE)


def add_embedded_if_unset(parser: Any, verb: str) -> None:
    """The ``--embedded-if-unset`` flag of a command that ``verb``s a database."""
    parser.add_argument(
        "--embedded-if-unset",
        action="store_true",
        help=f"without a configured DATABASE_URL, {verb} the embedded development database",
    )


def embedded_if_unset(args: argparse.Namespace) -> None:
    """Start the embedded database when asked to and no DATABASE_URL is configured."""
    from shared.settings import Settings

    if args.embedded_if_unset and Settings().database_url is None:
        use_embedded_database()
