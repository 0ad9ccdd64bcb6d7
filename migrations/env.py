"""Alembic environment: async (asyncpg) migrations of the one database all contexts share."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from library.bootstrap.persistence import metadata
from shared.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def _url() -> str:
    return config.attributes.get("database_url") or Settings().require_migration_url()


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()


def run_migrations_online() -> None:
    # A caller (pytest-alembic, the test fixtures) may hand us a connection or an engine.
    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        do_run_migrations(connectable)
        return
    if isinstance(connectable, AsyncEngine):
        asyncio.run(run_async_migrations(connectable))
        return
    engine = create_async_engine(_url(), poolclass=pool.NullPool)

    async def run_and_dispose() -> None:
        try:
            await run_async_migrations(engine)
        finally:
            await engine.dispose()

    asyncio.run(run_and_dispose())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
