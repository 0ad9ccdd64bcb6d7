"""The SQLAlchemy adapter of the unit-of-work port: one session, one transaction, per use case."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.kernel.consistency import committed_at
from shared.persistence.db import COMMIT_POSITION, EVENTS_COMMITTED, WRITE_OBSERVERS
from shared.persistence.driver import TransactionDriver
from shared.persistence.errors import DatabaseUnavailableError
from shared.persistence.idempotency_store import SqlAlchemyIdempotencyStore
from shared.persistence.outbox import SqlAlchemyOutbox

log = structlog.get_logger("library.db")


class ConnectionWaits:
    """Units of work waiting for a write connection right now (SQLAlchemy's pool does not say)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


# One per process: the metrics report it as the write pool's pending requests.
write_connection_waits = ConnectionWaits()


class SqlAlchemyUnitOfWork(ABC):
    """Opens a session on enter, binds the context's repositories to it, closes it on exit.

    Repositories only add and flush; ``commit()`` here is the only commit. Closing the session
    without a commit rolls the transaction back and returns the connection to the pool.
    A unit of work is not re-entrant and is never shared between tasks. Every unit of work
    carries the Idempotency-Key store, so a use case records its key in its own transaction,
    and the outbox, so its domain events commit with its change (and only with it).
    """

    idempotency: SqlAlchemyIdempotencyStore
    outbox: SqlAlchemyOutbox
    driver: TransactionDriver  # the transaction's asyncpg connection (BEGIN, COMMIT, driver SQL)

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside its 'async with' block")
        return self._session

    @abstractmethod
    def _bind_repositories(self, session: AsyncSession) -> None:
        """Create this context's repositories on ``session``."""

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work cannot be entered twice")
        self._session = await self._open_session()
        self.idempotency = SqlAlchemyIdempotencyStore(self._session)
        self.outbox = SqlAlchemyOutbox(self._session)
        self._bind_repositories(self._session)
        return self

    async def _open_session(self) -> AsyncSession:
        """A session whose transaction has begun on a live connection.

        BEGIN is sent now rather than with the first statement (the same one round trip), so a
        pooled connection that died while idle fails here, before the use case has done
        anything, and is replaced by a fresh one, once. That is the Faults guarantee on the
        write side, without a ping per checkout.
        """
        for attempt in (1, 2):
            session = self._session_factory()
            write_connection_waits.count += 1
            try:
                connection = await session.connection()
            except BaseException:
                await session.close()
                raise
            finally:
                write_connection_waits.count -= 1
            try:
                driver = TransactionDriver(connection, session.info.get(WRITE_OBSERVERS))
                await driver.begin()
            except Exception as exc:
                await connection.invalidate(exc)
                await session.close()
                if attempt == 2:
                    raise DatabaseUnavailableError(
                        "The database is unavailable or overloaded; retry later."
                    ) from exc
                log.info("write on a dead pooled connection: retrying on a fresh one")
                continue
            except BaseException:
                # Cancelled while BEGIN was on the wire: the connection's state is unknown, so
                # it is discarded (as SQLAlchemy does with a statement cancelled mid-flight).
                await connection.invalidate()
                await session.close()
                raise
            self.driver = driver
            return session
        raise AssertionError("unreachable")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            # close() rolls back whatever was not committed and releases the connection.
            await session.close()

    async def commit(self) -> None:
        await self.outbox.flush()  # the events no write statement took along
        session = self.session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        # On the driver (shared.persistence.driver): the session's transaction is the
        # adapter's, and closing the session after it sends nothing. Nothing runs on this unit
        # of work after its commit.
        await self.driver.commit()
        position = session.info.get(COMMIT_POSITION)
        if position is not None:
            # With a replica: the primary's WAL position now, past this commit, for the
            # response's Commit-LSN (one round trip; none without a replica).
            try:
                committed_at.set(await position())
            except Exception as exc:  # committed all the same: only the header is missing
                log.warning("no commit position for Commit-LSN", error=repr(exc))
        if self.outbox.recorded:
            # Wakes this process's relay and long polls now (other processes hear the relay's
            # NOTIFY after its delivery, or poll).
            committed = session.info.get(EVENTS_COMMITTED)
            if committed is not None:
                committed()
