"""The read side's database access: one asyncpg pool, one statement per read, no transaction.

Reads need none of the unit of work's machinery: no session, no identity map, no BEGIN or
ROLLBACK. A reader adapter sends one statement with :meth:`ReadPool.fetch` or
:meth:`ReadPool.fetchrow` and gets rows back; asyncpg prepares each statement once per
connection and reuses it (its statement cache), except through a transaction-mode pooler
(``LIBRARY_DB_POOLER=transaction``), where each read parses its statement again.

Connections lost while idle (a killed backend, a restarted server) never fail a read:
asyncpg notices a closed socket without a round trip, and a read that still meets a dead
connection is retried once on a fresh one, after every older connection of the pool has been
marked for replacement. A read is a single SELECT, so running it again is safe.

The connections are kept by :class:`ReadConnections`, not by ``asyncpg.Pool``: a read takes
an idle connection and gives it back with a few list operations and nothing to await, where
asyncpg's pool wrapped each connection in a proxy and returned it through ``asyncio.shield``
(a task per release): 10% of the CPU of a served GET one book (py-spy). Reads that must wait
are served first come, first served.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from time import monotonic, perf_counter
from typing import Any, Protocol

import asyncpg
import structlog
from sqlalchemy import ColumnElement, Select, Text, TextClause, literal_column
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.orm import InstrumentedAttribute

from shared.persistence.db import pooler_connect_args, server_settings
from shared.persistence.errors import (
    DEAD_CONNECTION,
    DatabaseUnavailableError,
    connection_refused,
)
from shared.persistence.replica import ReadRouting, ReplicaTracker
from shared.settings import Settings

log = structlog.get_logger("library.db")

QueryLogger = Callable[[Any], None]
QueryTimer = Callable[[str, float], None]


class StatementTracer(Protocol):
    """What makes a span per statement (shared.observability.spans), when tracing is on."""

    # Not None while statements are not traced (inside a request not sampled): read here
    # first, it spares such a request the call of :meth:`start`.
    untraced: ContextVar[Any]

    def start(self, sql: str, connection: Any) -> Any:
        """A started span, or None when the statement is not traced (the request is not)."""

    def end(self, span: Any, error: BaseException | None) -> None: ...


_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


def api_time_sql(column: str) -> str:
    """SQL that writes the ``timestamptz`` ``column`` as the API writes times: RFC 3339 in
    UTC with ``Z``, the fraction in microseconds and left out when zero (orjson's and
    pydantic's form: ``2026-12-02T16:40:00.123456Z``, ``2026-12-02T16:40:00Z``).

    The read side selects times so, as text: asyncpg made a datetime of each by adding a
    ``timedelta`` built with keyword arguments to its epoch, about 10,000 instructions a
    value, a third of a page of 50 books (two per book; callgrind, ``make bench-instructions``),
    only for orjson to write it out again. PostgreSQL writes it for well under a microsecond.
    """
    # The colons are quoted literals of the format: pgbench (make bench replays this SQL)
    # would take an unquoted ":MI" for one of its variables.
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24":"MI":"SS"Z"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24":"MI":"SS.US"Z"') END"""
    )


def api_time(column: InstrumentedAttribute[Any]) -> ColumnElement[str]:
    """:func:`api_time_sql` of a mapped column, for Core statements (inline SQL, no
    parameter; the column's table must be in the statement's FROM under its own name)."""
    col = column.expression
    return literal_column(api_time_sql(f"{col.table.name}.{col.name}"), Text)


class Statement:
    """A SQLAlchemy Core statement compiled once for asyncpg, and its parameters' order.

    Readers build statements with Core (the expressions the indexes and plan tests know) and
    compile each shape once; a read then only binds values by name and sends the text.
    """

    __slots__ = ("names", "sql")

    def __init__(self, stmt: Select[*tuple[Any, ...]] | TextClause) -> None:
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


class ReadConnections:
    """At most ``max_size`` connections, opened as reads need them and kept while they are used.

    ``acquire`` hands out the connection released last (its statements are prepared, its
    socket warm); when all are lent it waits, first come first served, up to ``wait_seconds``.
    ``release`` is synchronous: the connection goes to the oldest waiter, or back to the idle
    stack. A connection that is closed, older than the last ``expire()``, idle longer than
    ``max_idle`` seconds (0: no limit), or returned after ``close()``, is closed instead, and
    its place goes to a waiter, who opens a new one.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        max_size: int,
        wait_seconds: float,
        max_idle: float = 0.0,
    ) -> None:
        self._connect = connect
        self.max_size = max_size
        self._wait = wait_seconds
        self._max_idle = max_idle
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, released at)
        # A waiter gets a connection, or None: a free place, in which it opens one.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._generation: dict[asyncpg.Connection, int] = {}  # each open connection's
        self._current = 0
        self._closing: set[asyncio.Task[None]] = set()
        self.size = 0  # open, lent or being opened
        self.closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self) -> asyncpg.Connection:
        """A connection for the caller alone, until it releases it (TimeoutError after
        ``wait_seconds`` of waiting for another read to release one)."""
        if self.closed:
            raise RuntimeError("the read connections are closed")
        idle = self._idle
        while idle:
            connection, released = idle.pop()
            if self._usable(connection) and (
                self._max_idle <= 0 or monotonic() - released < self._max_idle
            ):
                return connection
            self._drop(connection, gracefully=True)
        if self.size < self.max_size:
            return await self._open()
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._wait):
                handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed over just as the wait ended: pass it on.
                late = waiter.result()
                if late is None:
                    self.size -= 1  # the place held for us, passed on
                    self._free_place()
                else:
                    self.release(late)
            else:
                waiter.cancel()
            raise
        if handed is None:
            self.size -= 1  # the place given up by a dropped connection, taken again in _open
            return await self._open()
        return handed

    def release(self, connection: asyncpg.Connection) -> None:
        """Give back a connection ``acquire`` lent."""
        if self.closed or not self._usable(connection):
            self._drop(connection, gracefully=not connection.is_closed())
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append((connection, monotonic()))

    def expire(self) -> None:
        """Replace every connection open now: idle ones at once, lent ones when released."""
        self._current += 1
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._drop(connection, gracefully=True)

    async def close(self) -> None:
        """Close the idle connections, and each lent one when it is released."""
        self.closed = True
        self.expire()
        for waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _usable(self, connection: asyncpg.Connection) -> bool:
        return not connection.is_closed() and self._generation.get(connection) == self._current

    async def _open(self) -> asyncpg.Connection:
        self.size += 1
        try:
            connection = await self._connect()
        except BaseException:
            self.size -= 1
            self._free_place()
            raise
        self._generation[connection] = self._current
        return connection

    def _drop(self, connection: asyncpg.Connection, *, gracefully: bool) -> None:
        self._generation.pop(connection, None)
        self.size -= 1
        if gracefully and not connection.is_closed():
            task = asyncio.get_running_loop().create_task(_close(connection))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        else:
            connection.terminate()
        self._free_place()

    def _free_place(self) -> None:
        """A place is free: the oldest waiter opens a connection in it."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self.size += 1  # held for the waiter (it gives it back to _open)
                waiter.set_result(None)
                return


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=5)
    except Exception:
        connection.terminate()


# What a replica may answer that the primary would not: a statement cancelled by a conflict
# with recovery (SQLSTATE 40001 on a hot standby). The read is run again on the primary.
_REPLICA_REFUSALS = (asyncpg.TransactionRollbackError,)

_COMMIT_POSITION = "SELECT pg_current_wal_insert_lsn()::text"


class ReadPool:
    """A pool of connections for reads: ``fetch``/``fetchrow`` run one statement outside any
    transaction. Opened by :meth:`open` at start-up, closed by :meth:`close` at shutdown.

    With a replica (``LIBRARY_REPLICA_DATABASE_URL``) the pool's connections are the
    replica's, and a small pool on the primary serves what the replica cannot
    (``shared.persistence.replica``): ``routing`` chooses; it is None without a replica, and
    a read then pays for nothing more than that check."""

    def __init__(self, settings: Settings, server_settings: dict[str, str]) -> None:
        self._settings = settings
        self._server_settings = server_settings
        self._connections: ReadConnections | None = None
        self.routing: ReadRouting | None = None
        self.tracker: ReplicaTracker | None = None
        self._query_loggers: list[QueryLogger] = []
        # Observability hooks, set by the composition root: a statement's duration, its span.
        self.on_query: QueryTimer | None = None
        self.statement_spans: StatementTracer | None = None

    @property
    def connections(self) -> ReadConnections:
        if self._connections is None:
            raise RuntimeError("the read pool is used before the app started")
        return self._connections

    async def open(self) -> None:
        """Get ready (connections are opened as reads need them, then kept)."""
        if self._connections is not None:
            return
        s = self._settings
        max_idle = float(s.db_pool_recycle_seconds) if s.db_pool_recycle_seconds > 0 else 0.0
        replica = s.replica()
        if replica is None:
            self._connections = ReadConnections(
                lambda: self._connect(s, self._server_settings),
                max_size=s.db_read_pool_size,
                wait_seconds=s.db_pool_timeout_seconds,
                max_idle=max_idle,
            )
            return
        replica_session = server_settings(replica)
        self._connections = ReadConnections(
            lambda: self._connect(replica, replica_session),
            max_size=s.db_read_pool_size,
            wait_seconds=s.db_pool_timeout_seconds,
            max_idle=max_idle,
        )
        primary = ReadConnections(
            lambda: self._connect(s, self._server_settings),
            max_size=s.primary_read_pool_size(),
            wait_seconds=s.db_pool_timeout_seconds,
            max_idle=max_idle,
        )
        self.tracker = ReplicaTracker(
            lambda: _connect(
                replica.asyncpg_dsn(),
                timeout=min(s.db_connect_timeout_seconds, 2.0),
                server_settings={"application_name": f"{s.db_application_name[:55]}-tracker"},
            ),
            max_lag_ms=s.replica_max_lag_ms,
        )
        self.routing = ReadRouting(
            self.tracker, self._connections, primary, s.replica_wait_ms / 1000
        )
        await self.tracker.refresh()  # the first reads know where to go
        self.tracker.start()

    async def close(self) -> None:
        connections, self._connections = self._connections, None
        routing, self.routing = self.routing, None
        tracker, self.tracker = self.tracker, None
        if tracker is not None:
            await tracker.stop()
        if routing is not None:
            await routing.primary.close()
        if connections is not None:
            await connections.close()

    async def commit_position(self) -> str:
        """The primary's WAL position now, as pg_lsn text: asked right after a commit, it is
        at or past that commit (any session of the primary will do: the position is the
        server's). One round trip, on the primary's read pool: only with a replica."""
        routing = self.routing
        if routing is None:
            raise RuntimeError("no replica: no commit position is needed")
        row = await self._read(self._fetchrow, routing.primary, _COMMIT_POSITION, ())
        return str(row[0])

    async def _connect(self, s: Settings, session: dict[str, str]) -> asyncpg.Connection:
        connection = await _connect(
            s.asyncpg_dsn(),
            timeout=s.db_connect_timeout_seconds,
            server_settings=session,
            # Through a transaction-mode pooler: no statement cache (shared.persistence.db).
            **pooler_connect_args(s),
        )
        # Nothing is sent here: a connection opened for a request costs only its handshake.
        for logger in self._query_loggers:
            connection.add_query_logger(logger)
        return connection

    async def add_query_logger(self, logger: QueryLogger) -> None:
        """Call ``logger`` with each statement any connection of the pool runs (tests, bench)."""
        self._query_loggers.append(logger)
        self._expire_all()  # new connections get the logger

    async def remove_query_logger(self, logger: QueryLogger) -> None:
        self._query_loggers.remove(logger)
        self._expire_all()

    def _expire_all(self) -> None:
        if self._connections is not None:
            self._connections.expire()
        if self.routing is not None:
            self.routing.primary.expire()

    def usage(self) -> tuple[int, int, int, int] | None:
        """(used, idle, max, waiting) connections, or None before the pool is open."""
        c = self._connections
        if c is None:
            return None
        return c.size - c.idle, c.idle, c.max_size, c.waiting

    async def fetch(self, sql: str, *args: Any) -> Sequence[asyncpg.Record]:
        """The rows of one statement."""
        if self.routing is not None:
            routed: Sequence[asyncpg.Record] = await self._routed(self._fetch, sql, args)
            return routed
        connections = self.connections
        try:
            return await self._fetch(connections, sql, args)
        except DEAD_CONNECTION:
            rows: Sequence[asyncpg.Record] = await self._retry(connections, self._fetch, sql, args)
            return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of one statement, or None."""
        if self.routing is not None:
            routed: asyncpg.Record | None = await self._routed(self._fetchrow, sql, args)
            return routed
        connections = self.connections
        try:
            return await self._fetchrow(connections, sql, args)
        except DEAD_CONNECTION:
            row: asyncpg.Record | None = await self._retry(connections, self._fetchrow, sql, args)
            return row

    async def _fetch(
        self, connections: ReadConnections, sql: str, args: tuple[Any, ...]
    ) -> Sequence[asyncpg.Record]:
        connection = await connections.acquire()
        spans = self.statement_spans
        span = (
            None
            if spans is None or spans.untraced.get() is not None
            else spans.start(sql, connection)
        )
        error: BaseException | None = None
        started = perf_counter()
        try:
            rows: Sequence[asyncpg.Record] = await connection.fetch(sql, *args)
        except BaseException as exc:
            error = exc
            _discard_if_interrupted(connection, exc)
            raise
        finally:
            if self.on_query is not None:
                self.on_query(sql, perf_counter() - started)
            if span is not None and spans is not None:
                spans.end(span, error)
            connections.release(connection)
        return rows

    async def _fetchrow(
        self, connections: ReadConnections, sql: str, args: tuple[Any, ...]
    ) -> asyncpg.Record | None:
        connection = await connections.acquire()
        spans = self.statement_spans
        span = (
            None
            if spans is None or spans.untraced.get() is not None
            else spans.start(sql, connection)
        )
        error: BaseException | None = None
        started = perf_counter()
        try:
            row: asyncpg.Record | None = await connection.fetchrow(sql, *args)
        except BaseException as exc:
            error = exc
            _discard_if_interrupted(connection, exc)
            raise
        finally:
            if self.on_query is not None:
                self.on_query(sql, perf_counter() - started)
            if span is not None and spans is not None:
                spans.end(span, error)
            connections.release(connection)
        return row

    async def _read(
        self,
        read: Callable[..., Awaitable[Any]],
        connections: ReadConnections,
        sql: str,
        args: tuple[Any, ...],
    ) -> Any:
        try:
            return await read(connections, sql, args)
        except DEAD_CONNECTION:
            return await self._retry(connections, read, sql, args)

    async def _routed(
        self, read: Callable[..., Awaitable[Any]], sql: str, args: tuple[Any, ...]
    ) -> Any:
        """One statement where the routing sends it: the replica's answer, or the primary's
        when the replica cannot give it (unreachable, or a conflict with its recovery)."""
        routing = self.routing
        if routing is None:  # closed meanwhile
            raise RuntimeError("the read pool is used before the app started")
        connections = routing.now()
        if connections is None:
            connections = await routing.after_wait()
        if connections is routing.primary:
            return await self._read(read, connections, sql, args)
        try:
            return await self._read(read, connections, sql, args)
        except DatabaseUnavailableError:
            log.info("the replica did not answer a read: read from the primary")
            routing.tracker.failed()
        except _REPLICA_REFUSALS:
            log.info("the replica refused a read (recovery conflict): read from the primary")
        return await self._read(read, routing.primary, sql, args)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """One of the pool's connections, held for the block (a long read: the export's cursor);
        with a replica, the replica's while it is usable, else the primary's."""
        routing = self.routing
        connections = (
            self.connections if routing is None or routing.tracker.usable else routing.primary
        )
        connection = await connections.acquire()
        try:
            yield connection
        except BaseException as exc:
            _discard_if_interrupted(connection, exc)
            raise
        finally:
            connections.release(connection)

    async def _retry(
        self,
        connections: ReadConnections,
        read: Callable[..., Awaitable[Any]],
        sql: str,
        args: tuple[Any, ...],
    ) -> Any:
        # The connection died while idle (or the server restarted): every connection opened
        # before now is suspect, so the pool replaces them as they come back; then once more.
        log.info("read on a dead pooled connection: retrying on a fresh one")
        connections.expire()
        try:
            return await read(connections, sql, args)
        except DEAD_CONNECTION as exc:
            raise DatabaseUnavailableError(
                "The database is unavailable or overloaded; retry later."
            ) from exc
