"""The SQLAlchemy unit of work of the authors context."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from library.authors.domain.repository import AuthorRepository
from library.authors.infrastructure.repository import SqlAlchemyAuthorRepository
from shared.persistence.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyAuthorsUnitOfWork(SqlAlchemyUnitOfWork):
    """One session and transaction over the authors' table."""

    authors: AuthorRepository

    def _bind_repositories(self, session: AsyncSession) -> None:
        self.authors = SqlAlchemyAuthorRepository(session)
