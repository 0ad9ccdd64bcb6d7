"""The repository contract, run against the SQLAlchemy adapter on real PostgreSQL."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from tests.contracts.authors import AuthorRepositoryContract


class TestSqlAlchemyAuthorRepository(AuthorRepositoryContract):
    @pytest.fixture
    def uow(self, session_factory: async_sessionmaker[AsyncSession]) -> SqlAlchemyAuthorsUnitOfWork:
        return SqlAlchemyAuthorsUnitOfWork(session_factory)
