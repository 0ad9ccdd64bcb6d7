"""The SQLAlchemy adapter of the unit-of-work port: one session, one transaction, per use case."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.persistence.idempotency_store import SqlAlchemyIdempotencyStore


class SqlAlchemyUnitOfWork(ABC):
    """Opens a session on enter, binds the context's repositories to it, closes it on exit.

    Repositories only add and flush; ``commit()`` here is the only commit. Closing the session
    without a commit rolls the transaction back and returns the connection to the pool.
    A unit of work is not re-entrant and is never shared between tasks. Every unit of work
    carries the Idempotency-Key store, so a use case records its key in its own transaction.
    """

    idempotency: SqlAlchemyIdempotencyStore

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, read_only: bool = False
    ) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        # A read-only unit of work (on an AUTOCOMMIT session factory) refuses to commit: its
        # statements are not in one transaction, so a write through it could not be undone.
        self._read_only = read_only

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
        self._session = self._session_factory()
        self.idempotency = SqlAlchemyIdempotencyStore(self._session)
        self._bind_repositories(self._session)
        return self

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
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.session.commit()
