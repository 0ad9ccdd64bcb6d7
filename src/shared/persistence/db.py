"""The database plumbing every context shares: declarative base, engine, sessions, error helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    MetaData,
    Text,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
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
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.types import DateTime
from sqlalchemy.util.concurrency import await_

from shared.kernel.errors import ConcurrentUpdateError
from shared.persistence.driver import StatementObservers
from shared.persistence.errors import connection_refused
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
        raise connection_refused(exc.__cause__ or exc) from exc


# The startup parameters PgBouncer 1.18 passes on (and sets again on each server connection it
# lends); it refuses a client that sends any other one, unless told to ignore it, and then the
# setting is lost.
POOLER_STARTUP_PARAMETERS = frozenset(
    {"application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"}
)


def session_settings(settings: Settings) -> dict[str, str]:
    """The session settings every connection of the app needs (writes and reads alike)."""
    return {
        "application_name": settings.db_application_name,
        # Typo tolerance of the author search (the `<%` operator of pg_trgm).
        "pg_trgm.word_similarity_threshold": str(settings.search_typo_threshold),
        # Nothing waits unbounded: a statement, a lock, a transaction left open by a lost client.
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        "timezone": "UTC",
    }


def server_settings(settings: Settings) -> dict[str, str]:
    """The session settings the app sends as it connects: all of them to PostgreSQL itself;
    through a transaction-mode pooler only those it passes on (the others are the database
    role's: docs/operations.md "Through PgBouncer")."""
    wanted = session_settings(settings)
    if settings.db_pooler == "none":
        return wanted
    return {name: value for name, value in wanted.items() if name in POOLER_STARTUP_PARAMETERS}


def pooler_connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's arguments for a connection through a transaction-mode pooler (none direct).

    A prepared statement lives in one server session, and the pooler lends a session for one
    transaction only: asyncpg's statement cache is off, so that each statement is unnamed and
    parsed again each time, in the same message flow as its execution (no name can collide
    with another client's, none is looked for on a session that never saw it)."""
    if settings.db_pooler == "none":
        return {}
    return {"statement_cache_size": 0}


def _unnamed_statement() -> str:
    return ""


def create_engine(settings: Settings) -> AsyncEngine:
    """The write side's asyncpg engine: a fixed pool sized for the load, server-side timeouts.

    Lost connections heal by themselves, without a round trip per checkout: a pooled connection
    whose socket the server closed (killed backend, restarted server) is replaced as it leaves
    the pool (asyncpg knows without asking), and an error on a connection lost mid-request
    invalidates the pool's older connections too. ``db_pool_pre_ping`` adds a real ``SELECT 1``
    per checkout for networks that drop connections silently.
    """
    engine = create_async_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        echo=settings.db_echo,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": server_settings(settings),
            **pooler_connect_args(settings),
            # Through a pooler, SQLAlchemy's cache of prepared statements is off too, and its
            # statements unnamed: each is prepared and run in the transaction SQLAlchemy began
            # (one server session), the next replacing it, so none piles up on the server.
            **(
                {}
                if settings.db_pooler == "none"
                else {
                    "prepared_statement_cache_size": 0,
                    "prepared_statement_name_func": _unnamed_statement,
                }
            ),
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    event.listen(
        engine.sync_engine.pool,
        "checkout",
        _ping_on_checkout if settings.db_pool_pre_ping else _closed_on_checkout,
    )
    return engine


def _closed_on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: object) -> None:
    """Refuse a connection whose socket is already closed; the pool opens a fresh one instead.

    No round trip: asyncpg marks a connection closed as soon as the event loop sees the server
    hang up (a killed backend, a restart).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("pooled connection was closed by the server")


def _ping_on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: object) -> None:
    """Check a connection as it leaves the pool: ``SELECT 1``, one round trip.

    SQLAlchemy's own ``pool_pre_ping`` costs three on asyncpg (it wraps its ping in BEGIN ...
    ROLLBACK before the connection is switched to AUTOCOMMIT). A dead connection raises
    DisconnectionError, on which the pool discards it and hands out a fresh one.
    """
    try:
        await_(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is dead ({type(exc).__name__})") from exc


# The key, in a write session's ``info``, of what to call once a transaction that recorded
# events has committed (the composition root sets it: the process's EventNotifier). The write
# transaction itself sends no NOTIFY: PostgreSQL serialises the commits of notifying
# transactions (a lock held through the commit's WAL flush), which capped POST at one commit
# per flush (docs/events.md, "Waking up").
EVENTS_COMMITTED = "library.events_committed"
# Set in a session's ``info`` when units of work record no events (development only, to
# measure what the outbox costs: LIBRARY_EVENTS_OUTBOX_ENABLED=false).
EVENTS_DROPPED = "library.events_dropped"
# The key, in a write session's ``info``, of what gives the primary's WAL position after a
# commit (with a replica only: the read pool's ``commit_position``); the unit of work hands it
# to the response's Commit-LSN header (docs/operations.md "Read replica").
COMMIT_POSITION = "library.commit_position"
# The key, in a write session's ``info``, of the StatementObservers of the round trips units of
# work send on asyncpg directly (shared.persistence.driver): metrics, spans, watchers.
WRITE_OBSERVERS = "library.write_observers"


def create_session_factory(
    engine: AsyncEngine,
    events_committed: Callable[[], None] | None = None,
    *,
    record_events: bool = True,
    commit_position: Callable[[], Awaitable[str]] | None = None,
    observers: StatementObservers | None = None,
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no implicit refresh I/O).

    ``events_committed`` is called after a unit of work that recorded events commits
    (``shared.persistence.outbox.EVENTS_COMMITTED``). ``record_events=False`` (development
    only, ``LIBRARY_EVENTS_OUTBOX_ENABLED``) gives units of work an outbox that keeps nothing.
    ``commit_position`` is called after every commit, when set (``COMMIT_POSITION``).
    ``observers`` watch what units of work send on asyncpg directly (``WRITE_OBSERVERS``).
    """
    info: dict[str, object] = {} if record_events else {EVENTS_DROPPED: True}
    if events_committed is not None:
        info[EVENTS_COMMITTED] = events_committed
    if commit_position is not None:
        info[COMMIT_POSITION] = commit_position
    if observers is not None:
        info[WRITE_OBSERVERS] = observers
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


async def flush(session: AsyncSession, *, kind: str, resource_id: object) -> None:
    """Flush ``session``; a row whose version changed since it was read is a ConcurrentUpdateError.

    The version check is in the UPDATE/DELETE itself (``version_id_col``), so it holds under
    concurrency: no read-then-write window.
    """
    try:
        await session.flush()
    except StaleDataError:
        raise ConcurrentUpdateError.of(kind, resource_id) from None


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The Alembic revisions the database is at (empty when it was never migrated)."""
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return set()
        rows = await conn.scalars(text("SELECT version_num FROM alembic_version"))
        return set(rows)


def contains_literally(
    haystack: SQLCoreOperations[str], needle: ColumnElement[str]
) -> ColumnElement[bool]:
    r"""``haystack`` contains ``needle`` literally, both folded by ``search_key``.

    The needle is folded first and escaped after (``\``, ``%`` and ``_``), in the statement
    itself: folding can turn a compatibility form (U+FF05 fullwidth
    percent, U+FE6A small percent, U+FF3C fullwidth reverse solidus...)
    into a wildcard or the escape character, so escaping before folding is not enough.
    The pattern is still a constant when the plan is made (every function in it is immutable),
    so the trigram index serves it.
    """
    escaped = func.search_key(needle)
    for special in ("\\", "%", "_"):
        escaped = func.replace(escaped, _sql_text(special), _sql_text("\\" + special))
    pattern = _sql_text("%").op("||")(escaped).op("||")(_sql_text("%"))
    return func.search_key(haystack).like(pattern, escape="\\")


def _sql_text(value: str) -> ColumnElement[str]:
    """A string constant written into the SQL (not a parameter: the statements' parameters are
    the request's values, bound by name)."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)
