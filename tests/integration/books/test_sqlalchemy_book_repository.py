"""The repository and reader contract, on the SQLAlchemy and asyncpg adapters on PostgreSQL."""

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.books.infrastructure.reader import AsyncpgBookReader
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from shared.persistence.reads import ReadPool
from tests.contracts.authors import make_author
from tests.contracts.books import AUTHOR_NAMES, BookRepositoryContract


class TestSqlAlchemyBookRepository(BookRepositoryContract):
    @pytest.fixture
    def uow(self, session_factory: async_sessionmaker[AsyncSession]) -> SqlAlchemyBooksUnitOfWork:
        return SqlAlchemyBooksUnitOfWork(session_factory)

    @pytest.fixture
    def reader(self, read_pool: ReadPool) -> AsyncpgBookReader:
        return AsyncpgBookReader(read_pool)

    @pytest.fixture
    async def author_ids(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> list[uuid.UUID]:
        authors = [make_author(name) for name in AUTHOR_NAMES]
        async with SqlAlchemyAuthorsUnitOfWork(session_factory) as uow:
            for author in authors:
                await uow.authors.add(author)
            await uow.commit()
        return [a.id for a in authors]
