"""A unit of work's own round trips, sent on its transaction's asyncpg connection.

The unit of work keeps SQLAlchemy's session (the ORM's loads and flushes go through it), but
what needs none of its machinery goes to asyncpg itself: the BEGIN, the COMMIT, and the
statements a repository sends as driver SQL (a :class:`~shared.persistence.reads.Statement`,
compiled once). Through the session, each of them was a greenlet spawned, an execution context
built and SQLAlchemy's event dispatch: a POST a book went from 1.92M to 1.57M instructions
without them (callgrind, ``make bench-instructions SHAPES=post_book``; docs/performance.md).

The transaction is the asyncpg adapter's own (SQLAlchemy's hook, ``_start_transaction``, and
its ``_transaction``), so the session's connection sees it as its own: when the unit of work
ends without a commit, closing the session rolls it back, as before. SQLAlchemy's execution
events do not see these statements; :class:`StatementObservers` does (metrics, spans, the
benchmark's capture and the tests), as the read pool's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.persistence.errors import DEAD_CONNECTION

if TYPE_CHECKING:
    from shared.persistence.reads import QueryTimer, Statement, StatementTracer

# Called with each round trip as it is sent: the statement's SQL and its arguments, or
# "BEGIN"/"COMMIT" and no arguments.
Watcher = Callable[[str, Sequence[Any]], None]


class StatementObservers:
    """What watches the statements units of work send on asyncpg directly: their durations
    (metrics), their spans (tracing), set by the composition root; and ``watchers`` of every
    round trip (the benchmark's capture, tests)."""

    __slots__ = ("on_query", "statement_spans", "watchers")

    def __init__(self) -> None:
        self.on_query: QueryTimer | None = None
        self.statement_spans: StatementTracer | None = None
        self.watchers: list[Watcher] = []

    def _watch(self, sql: str, args: Sequence[Any]) -> None:
        for watcher in self.watchers:
            watcher(sql, args)


_UNOBSERVED = StatementObservers()


class TransactionDriver:
    """The asyncpg connection of one unit of work's transaction (see the module)."""

    __slots__ = ("_adapter", "_connection", "_observers")

    def __init__(
        self, connection: AsyncConnection, observers: StatementObservers | None = None
    ) -> None:
        self._connection = connection
        # The pool's connection (no I/O: the session's connection is open) and its adapter.
        self._adapter: Any = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        self._observers = observers or _UNOBSERVED

    async def begin(self) -> None:
        """BEGIN now (the adapter would send it before the first statement): a pooled
        connection that died while idle fails here, before the use case has done anything."""
        self._observers._watch("BEGIN", ())
        await self._adapter._start_transaction()

    async def fetchrow(self, statement: Statement, values: dict[str, Any]) -> asyncpg.Record | None:
        """The first row ``statement`` returns, run with ``values`` in the transaction."""
        sql, args = statement.sql, statement.args(values)
        observers = self._observers
        observers._watch(sql, args)
        connection: asyncpg.Connection = self._adapter.driver_connection
        spans = observers.statement_spans
        span = None if spans is None else spans.start(sql, connection)
        error: BaseException | None = None
        started = perf_counter()
        try:
            return await connection.fetchrow(sql, *args)
        except BaseException as exc:
            error = exc
            self._failed(exc)
            raise
        finally:
            if observers.on_query is not None:
                observers.on_query(sql, perf_counter() - started)
            if span is not None and spans is not None:
                spans.end(span, error)

    async def commit(self) -> None:
        """COMMIT the transaction (nothing when none was begun)."""
        adapter = self._adapter
        transaction = adapter._transaction
        if transaction is None:
            return
        self._observers._watch("COMMIT", ())
        try:
            # The adapter forgets its transaction whatever the outcome, as its commit() does.
            await adapter._call_and_discard(transaction.commit)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        """SQLAlchemy's rule for a failed round trip: a connection that died, or whose round
        trip was interrupted mid-flight (cancelled: its state is unknown), is invalidated. The
        pool opens a fresh one, and closing the session sends nothing on this one. (Outside a
        greenlet the adapter terminates the connection at once, nothing awaited.)"""
        if isinstance(exc, Exception) and not (
            isinstance(exc, DEAD_CONNECTION) or self._adapter.driver_connection.is_closed()
        ):
            return  # the database refused: the transaction is rolled back on close
        self._connection.sync_connection.invalidate(exc)  # type: ignore[union-attr]
