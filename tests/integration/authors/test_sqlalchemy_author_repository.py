"""The repository contract, run against the SQLAlchemy adapter on real PostgreSQL."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.infrastructure.reader import AsyncpgAuthorReader
from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from shared.persistence.reads import ReadPool
from tests.contracts.authors import AuthorRepositoryContract


class TestSqlAlchemyAuthorRepository(AuthorRepositoryContract):
    @pytest.fixture
    def uow(self, session_factory: async_sessionmaker[AsyncSession]) -> SqlAlchemyAuthorsUnitOfWork:
        return SqlAlchemyAuthorsUnitOfWork(session_factory)

    @pytest.fixture
    def reader(self, read_pool: ReadPool) -> AsyncpgAuthorReader:
        return AsyncpgAuthorReader(read_pool)
