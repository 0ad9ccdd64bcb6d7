"""The database plumbing every context shares: declarative base, engine, sessions, error helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Dialect
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
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import DateTime

from shared.errors import ConcurrentUpdateError, ServiceUnavailableError
from shared.settings import Settings

log = structlog.stdlib.get_logger("library.db")

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


class DatabaseUnavailableError(ServiceUnavailableError):
    """No connection to the database could be opened (down, restarting, refusing, too busy)."""

    code = "database-unavailable"
    title = "Service unavailable"


def _connect_or_unavailable(
    dialect: Dialect, _record: ConnectionPoolEntry, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Open a DBAPI connection; any failure to do so is a DatabaseUnavailableError (503).

    asyncpg's connect errors reach the caller unwrapped by SQLAlchemy: a missing Unix socket
    (FileNotFoundError), "the database system is starting up" (CannotConnectNowError), "too
    many clients"... Each means the same to a client: retry later.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as exc:
        # The client sees only a 503; the operator needs the cause (wrong password, no such
        # database, refused...). Driver messages carry no password.
        cause = exc.__cause__ or exc  # asyncpg's own error, when the dialect adapted it
        log.warning("cannot connect to the database", error=type(cause).__name__, reason=str(exc))
        raise DatabaseUnavailableError(
            "The database is unavailable or overloaded; retry later."
        ) from exc


def create_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine with a bounded pool and server-side timeouts.

    Lost connections heal by themselves: ``pool_pre_ping`` replaces a pooled connection that
    died while idle (killed backend, restarted server) before a request gets it, and an error
    on a connection lost mid-request invalidates the pool's older connections too.
    """
    server_settings = {
        "application_name": settings.db_application_name,
        # Nothing waits unbounded: a statement, a lock, a transaction left open by a lost client.
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        "timezone": "UTC",
    }
    engine = create_async_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=True,
        echo=settings.db_echo,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": server_settings,
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no implicit refresh I/O)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


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


# The database cannot serve this now, and a retry later may succeed: class 08 connection
# exceptions, 53 insufficient resources, 57 operator intervention (57014 is a statement
# cancelled by statement_timeout, 57P01 a terminated backend), 55P03 lock_timeout,
# 40001 serialization failure, 40P01 deadlock.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
TRANSIENT_SQLSTATES = frozenset({"55P03", "40001", "40P01"})


def is_transient(exc: DBAPIError) -> bool:
    """True when the database refused for now (timeout, overload, shutdown), not for good."""
    code = sqlstate(exc)
    return code is not None and (
        code[:2] in TRANSIENT_SQLSTATE_CLASSES or code in TRANSIENT_SQLSTATES
    )


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
