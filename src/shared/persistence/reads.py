"""The read side's database access: one asyncpg pool, one statement per read, no transaction.

Reads need none of the unit of work's machinery: no session, no identity map, no BEGIN or
ROLLBACK. A reader adapter sends one statement with :meth:`ReadPool.fetch` or
:meth:`ReadPool.fetchrow` and gets rows back; asyncpg prepares each statement once per
connection and reuses it (its statement cache).

Connections lost while idle (a killed backend, a restarted server) never fail a read:
asyncpg notices a closed socket without a round trip, and a read that still meets a dead
connection is retried once on a fresh one, after every older connection of the pool has been
marked for replacement. A read is a single SELECT, so running it again is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

import asyncpg
import structlog
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from shared.persistence.errors import DatabaseUnavailableError, connection_refused
from shared.settings import Settings

log = structlog.get_logger("library.db")

QueryLogger = Callable[[Any], None]
QueryTimer = Callable[[str, float], None]

# What a connection that died under us raises when it is used.
_DEAD_CONNECTION = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    # A connection whose backend was killed under it can leave asyncpg's protocol mid-state.
    asyncpg.InternalClientError,
    ConnectionResetError,
    BrokenPipeError,
)


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class Statement:
    """A SQLAlchemy Core statement compiled once for asyncpg, and its parameters' order.

    Readers build statements with Core (the expressions the indexes and plan tests know) and
    compile each shape once; a read then only binds values by name and sends the text.
    """

    __slots__ = ("names", "sql")

    def __init__(self, stmt: Select[*tuple[Any, ...]]) -> None:
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())

    def args(self, values: dict[str, Any]) -> list[Any]:
        """The positional arguments, from ``values`` by parameter name."""
        return [values[name] for name in self.names]


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except Exception as exc:
        raise connection_refused(exc) from exc


def _discard_if_interrupted(connection: Any, exc: BaseException) -> None:
    """Close a connection whose statement was cancelled (the client left, a timeout fired).

    asyncpg cancels a statement politely, but one cancelled while its messages were still being
    sent (a statement's first PREPARE, a type lookup) has been seen to leave the server waiting
    for the rest, for good, on a connection back in the pool. Its state is unknown: as
    SQLAlchemy does on the write side, it is discarded, and the pool opens another.
    """
    if not isinstance(exc, Exception):
        connection.terminate()


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Reads leave no session state behind: skip asyncpg's reset query on release."""


class ReadPool:
    """A pool of connections for reads: ``fetch``/``fetchrow`` run one statement outside any
    transaction. Opened by :meth:`open` at start-up, closed by :meth:`close` at shutdown."""

    def __init__(self, settings: Settings, server_settings: dict[str, str]) -> None:
        self._settings = settings
        self._server_settings = server_settings
        self._pool: asyncpg.Pool | None = None
        self._query_loggers: list[QueryLogger] = []
        # Observability hooks, set by the composition root: a statement's duration, and how
        # many reads wait for a connection right now (asyncpg does not say).
        self.on_query: QueryTimer | None = None
        self.waiting = 0
        # Connections taken from the pool right now (counted here: asyncpg counts by walking
        # its holders), and how many it may open.
        self._in_use = 0
        self._max_size = settings.db_read_pool_size

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the read pool is used before the app started")
        return self._pool

    async def open(self) -> None:
        """Create the pool (connections are opened as reads need them, then kept)."""
        if self._pool is not None:
            return
        s = self._settings
        self._pool = await asyncpg.create_pool(
            s.asyncpg_dsn(),
            min_size=0,
            max_size=s.db_read_pool_size,
            max_inactive_connection_lifetime=float(s.db_pool_recycle_seconds)
            if s.db_pool_recycle_seconds > 0
            else 0.0,
            timeout=s.db_connect_timeout_seconds,
            server_settings=self._server_settings,
            connect=_connect,
            init=self._init_connection,
            reset=_no_reset,
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def add_query_logger(self, logger: QueryLogger) -> None:
        """Call ``logger`` with each statement any connection of the pool runs (tests, bench)."""
        self._query_loggers.append(logger)
        if self._pool is not None:
            await self._pool.expire_connections()  # new connections get the logger in init

    async def remove_query_logger(self, logger: QueryLogger) -> None:
        self._query_loggers.remove(logger)
        if self._pool is not None:
            await self._pool.expire_connections()

    def usage(self) -> tuple[int, int, int, int] | None:
        """(used, idle, max, waiting) connections, or None before the pool is open."""
        pool = self._pool
        if pool is None:
            return None
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle, pool.get_max_size(), self.waiting

    async def _init_connection(self, connection: asyncpg.Connection) -> None:
        # Nothing is sent here: a connection opened for a request costs only its handshake.
        for logger in self._query_loggers:
            connection.add_query_logger(logger)

    async def fetch(self, sql: str, *args: Any) -> Sequence[asyncpg.Record]:
        """The rows of one statement."""
        try:
            return await self._fetch(sql, args)
        except _DEAD_CONNECTION:
            rows: Sequence[asyncpg.Record] = await self._retry(self._fetch, sql, args)
            return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of one statement, or None."""
        try:
            return await self._fetchrow(sql, args)
        except _DEAD_CONNECTION:
            row: asyncpg.Record | None = await self._retry(self._fetchrow, sql, args)
            return row

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> Sequence[asyncpg.Record]:
        pool = self.pool
        connection = await self._acquire(pool)
        started = perf_counter()
        try:
            rows: Sequence[asyncpg.Record] = await connection.fetch(sql, *args)
        except BaseException as exc:
            _discard_if_interrupted(connection, exc)
            raise
        finally:
            if self.on_query is not None:
                self.on_query(sql, perf_counter() - started)
            self._in_use -= 1
            await pool.release(connection)
        return rows

    async def _fetchrow(self, sql: str, args: tuple[Any, ...]) -> asyncpg.Record | None:
        pool = self.pool
        connection = await self._acquire(pool)
        started = perf_counter()
        try:
            row: asyncpg.Record | None = await connection.fetchrow(sql, *args)
        except BaseException as exc:
            _discard_if_interrupted(connection, exc)
            raise
        finally:
            if self.on_query is not None:
                self.on_query(sql, perf_counter() - started)
            self._in_use -= 1
            await pool.release(connection)
        return row

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """One of the pool's connections, held for the block (a long read: the export's cursor).

        Take connections here, never from ``pool`` directly: the reads count what is in use."""
        pool = self.pool
        connection = await self._acquire(pool)
        try:
            yield connection
        finally:
            self._in_use -= 1
            await pool.release(connection)

    async def _acquire(self, pool: asyncpg.Pool) -> Any:
        """A connection of ``pool``, counted in ``_in_use`` (the caller releases it and counts
        it out). Waiting for another read to release one is bounded by the pool timeout."""
        if self._in_use < self._max_size:
            # A free slot, now ours: acquiring waits for no other read (opening a connection,
            # if it comes to that, is bounded by the connect timeout), so no timer is armed.
            # (asyncpg's own count walks every connection holder: dearer than the timer.)
            self._in_use += 1
            try:
                return await pool.acquire()
            except BaseException:
                self._in_use -= 1
                raise
        # asyncio.timeout, not acquire(timeout=...): asyncpg runs a timed acquire through
        # wait_for, a task of its own per request.
        self.waiting += 1
        try:
            async with asyncio.timeout(self._settings.db_pool_timeout_seconds):
                connection = await pool.acquire()
        finally:
            self.waiting -= 1
        self._in_use += 1
        return connection

    async def _retry(self, read: Any, sql: str, args: tuple[Any, ...]) -> Any:
        # The connection died while idle (or the server restarted): every connection opened
        # before now is suspect, so the pool replaces them as they come back; then once more.
        log.info("read on a dead pooled connection: retrying on a fresh one")
        await self.pool.expire_connections()
        try:
            return await read(sql, args)
        except _DEAD_CONNECTION as exc:
            raise DatabaseUnavailableError(
                "The database is unavailable or overloaded; retry later."
            ) from exc
