"""Dependency-injector container of the books context."""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from library.books.application.importing import BookImporter
from library.books.application.lookup import BookLookup
from library.books.application.ports import AuthorDirectory
from library.books.application.services import BookService
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from library.books.public import BooksFacade


class BooksContainer(containers.DeclarativeContainer):
    """Builds the books use cases; needs a session factory and the authors' directory port."""

    session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = providers.Dependency()
    # Reads run on AUTOCOMMIT sessions (no BEGIN/ROLLBACK round trips): see shared.persistence.db.
    read_session_factory: providers.Dependency[async_sessionmaker[AsyncSession]] = (
        providers.Dependency()
    )
    author_directory: providers.Dependency[AuthorDirectory] = providers.Dependency()

    unit_of_work = providers.Factory(SqlAlchemyBooksUnitOfWork, session_factory=session_factory)
    read_unit_of_work = providers.Factory(
        SqlAlchemyBooksUnitOfWork, session_factory=read_session_factory, read_only=True
    )
    service = providers.Factory(
        BookService, uow=unit_of_work, authors=author_directory, reads=read_unit_of_work
    )
    importer = providers.Factory(
        BookImporter, uow=unit_of_work, authors=author_directory, reads=read_unit_of_work
    )
    lookup = providers.Factory(BookLookup, uow=read_unit_of_work)
    facade = providers.Factory(BooksFacade, lookup=lookup)
