"""Dependency-injector container of the authors context."""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.application.lookup import AuthorLookup
from library.authors.application.ports import BookCatalog
from library.authors.application.registry import AuthorNameRegistry
from library.authors.application.services import AuthorService
from library.authors.infrastructure.reader import AsyncpgAuthorReader
from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.authors.public import AuthorsFacade
from shared.persistence.reads import ReadPool


class AuthorsContainer(containers.DeclarativeContainer):
    """Builds the authors use cases; needs a session factory and the books' catalog port."""

    session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = providers.Dependency()
    # Reads run on AUTOCOMMIT sessions (no BEGIN/ROLLBACK round trips): see shared.persistence.db.
    read_session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = (
        providers.Dependency()
    )
    read_pool: providers.Dependency[ReadPool] = providers.Dependency()
    book_catalog: providers.Dependency[BookCatalog] = providers.Dependency()

    reader = providers.Singleton(AsyncpgAuthorReader, pool=read_pool)

    unit_of_work = providers.Factory(SqlAlchemyAuthorsUnitOfWork, session_factory=session_factory)
    read_unit_of_work = providers.Factory(
        SqlAlchemyAuthorsUnitOfWork, session_factory=read_session_factory, read_only=True
    )
    service = providers.Factory(
        AuthorService, uow=unit_of_work, books=book_catalog, reads=read_unit_of_work
    )
    lookup = providers.Singleton(AuthorLookup, reader=reader)
    registry = providers.Factory(AuthorNameRegistry, uow=unit_of_work)
    facade = providers.Factory(AuthorsFacade, lookup=lookup, registry=registry)
