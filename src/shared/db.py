"""The database plumbing every context shares: declarative base, engine, sessions, error helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import DateTime

from shared.errors import ConcurrentUpdateError
from shared.settings import Settings

# One naming convention for every constraint, so migrations name them predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """The one declarative base: every context's models share its metadata (one database)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012


def create_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine with a bounded pool and server-side timeouts."""
    server_settings = {
        "application_name": "library",
        # Typo tolerance of the author search (the `<%` operator of pg_trgm).
        "pg_trgm.word_similarity_threshold": str(settings.search_typo_threshold),
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(max(settings.db_statement_timeout_ms * 2, 0)),
        "timezone": "UTC",
    }
    return create_async_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=settings.db_pool_pre_ping,
        echo=settings.db_echo,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": server_settings,
        },
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no implicit refresh I/O)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads, on AUTOCOMMIT connections: each query is one round trip.

    A read needs no transaction of its own; without one, PostgreSQL is not sent BEGIN before
    the query nor ROLLBACK after it. Each statement still sees a consistent snapshot.
    """
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(autocommit, expire_on_commit=False, autoflush=False)


def _driver_error(exc: DBAPIError) -> Any:
    # SQLAlchemy wraps the asyncpg exception: the DBAPI adapter's __cause__ is asyncpg's own.
    return getattr(exc.orig, "__cause__", None) or exc.orig


async def flush(session: AsyncSession, *, kind: str, resource_id: object) -> None:
    """Flush ``session``; a row whose version changed since it was read is a ConcurrentUpdateError.

    The version check is in the UPDATE/DELETE itself (``version_id_col``), so it holds under
    concurrency: no read-then-write window.
    """
    try:
        await session.flush()
    except StaleDataError:
        raise ConcurrentUpdateError.of(kind, resource_id) from None


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke, when the driver reports it."""
    name = getattr(_driver_error(exc), "constraint_name", None)
    return name if isinstance(name, str) else None


def sqlstate(exc: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error (23505 unique, 23503 foreign key, ...)."""
    code = getattr(_driver_error(exc), "sqlstate", None)
    return code if isinstance(code, str) else None


# 23503 foreign_key_violation; 23001 restrict_violation (an ON DELETE RESTRICT key).
REFERENCE_VIOLATIONS = frozenset({"23503", "23001"})
UNIQUE_VIOLATION = "23505"


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The Alembic revisions the database is at (empty when it was never migrated)."""
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return set()
        rows = await conn.scalars(text("SELECT version_num FROM alembic_version"))
        return set(rows)


def like_pattern(text: str) -> str:
    r"""A LIKE pattern matching ``text`` literally anywhere (``%``, ``_`` and ``\`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
