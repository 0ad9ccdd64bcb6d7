"""The SQLAlchemy unit of work of the books context."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from library.books.domain.repository import BookRepository
from library.books.infrastructure.repository import SqlAlchemyBookRepository
from shared.persistence.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyBooksUnitOfWork(SqlAlchemyUnitOfWork):
    """One session and transaction over the books' tables."""

    books: BookRepository

    def _bind_repositories(self, session: AsyncSession) -> None:
        self.books = SqlAlchemyBookRepository(session, self.outbox, self.driver)
