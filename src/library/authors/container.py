"""Dependency-injector container of the authors context."""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.authors.application.ports import BookCatalog
from library.authors.application.queries import AuthorQueries
from library.authors.application.registry import AuthorNameRegistry
from library.authors.application.services import AuthorService
from library.authors.infrastructure.reader import AsyncpgAuthorReader
from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.authors.public import AuthorsFacade
from shared.persistence.reads import ReadPool


class AuthorsContainer(containers.DeclarativeContainer):
    """Builds the authors use cases; needs a session factory, the read pool and the books'
    catalog port."""

    session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = providers.Dependency()
    read_pool: providers.Dependency[ReadPool] = providers.Dependency()
    book_catalog: providers.Dependency[BookCatalog] = providers.Dependency()

    # The read side: stateless, built once, shared by every request.
    reader = providers.Singleton(AsyncpgAuthorReader, pool=read_pool)
    queries = providers.Singleton(AuthorQueries, reader=reader)

    unit_of_work = providers.Factory(SqlAlchemyAuthorsUnitOfWork, session_factory=session_factory)
    # The write side: a service and its unit of work per use case.
    service = providers.Factory(AuthorService, uow=unit_of_work, books=book_catalog)
    registry = providers.Factory(AuthorNameRegistry, uow=unit_of_work)
    # A registry (and its unit of work) per call: the facade itself holds no state.
    facade = providers.Singleton(AuthorsFacade, queries=queries, registry=registry.provider)
