"""Dependency-injector container of the books context."""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.books.application.credited_names import CreditedNamesKeeper
from library.books.application.ports import AuthorDirectory
from library.books.application.queries import BookQueries
from library.books.application.services import BookService
from library.books.infrastructure.credited_names import SqlAlchemyAuthorNameCopies
from library.books.infrastructure.reader import AsyncpgBookReader
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from library.books.interchange.importer import BookImporter
from library.books.public import BooksFacade
from shared.persistence.reads import ReadPool


class BooksContainer(containers.DeclarativeContainer):
    """Builds the books use cases; needs a session factory and the authors' directory port."""

    session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = providers.Dependency()
    read_pool: providers.Dependency[ReadPool] = providers.Dependency()
    # The outbox relay's sessions (its own engine): the subscriber's writes run on them.
    relay_session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = (
        providers.Dependency()
    )
    author_directory: providers.Dependency[AuthorDirectory] = providers.Dependency()

    # The read side: stateless, built once, shared by every request.
    reader = providers.Singleton(AsyncpgBookReader, pool=read_pool)
    queries = providers.Singleton(BookQueries, reader=reader, authors=author_directory)

    unit_of_work = providers.Factory(SqlAlchemyBooksUnitOfWork, session_factory=session_factory)
    # The write side: a service and its unit of work per use case.
    service = providers.Factory(BookService, uow=unit_of_work, authors=author_directory)
    importer = providers.Factory(
        BookImporter, uow=unit_of_work, authors=author_directory, reader=reader
    )
    facade = providers.Singleton(BooksFacade, queries=queries)
    # The relay's subscriber keeping the credited authors' names (from the authors' events).
    # (Factories: the relay, a singleton of the root container, builds its subscriber once.)
    credited_names = providers.Factory(
        CreditedNamesKeeper,
        copies=providers.Factory(SqlAlchemyAuthorNameCopies, session_factory=relay_session_factory),
    )
