"""The books use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import overload

from library.books.application.ports import AuthorDirectory, BooksUnitOfWork
from library.books.domain.errors import (
    BookNotFoundError,
    DuplicateIsbnError,
    UnknownAuthorsError,
)
from library.books.domain.events import book_created, book_deleted, book_fields, book_updated
from library.books.domain.model import Book
from shared.kernel.events import NO_ORIGIN, Origin
from shared.kernel.idempotency import (
    Idempotency,
    Once,
    ResultCodec,
    StoredResult,
    perform_once,
    read_time,
    stored_time,
)
from shared.kernel.preconditions import ANY_VERSION, IfMatch
from shared.kernel.values import UNSET, Unset, utc_now


@dataclass(frozen=True, slots=True)
class AddBook:
    """Add a book to the catalog."""

    title: str
    author_ids: Sequence[uuid.UUID]
    isbn: str | None = None
    publication_year: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class ReviseBook:
    """Change some of a book's fields; ``author_ids`` replaces the whole credit list."""

    title: str | Unset = UNSET
    author_ids: Sequence[uuid.UUID] | Unset = UNSET
    isbn: str | Unset | None = UNSET
    publication_year: int | Unset | None = UNSET
    language: str | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class AuthorRef:
    """An author as a book credits them."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class BookView:
    """A book with its authors' names, in credit order."""

    book: Book
    authors: tuple[AuthorRef, ...]


def _stored_view(view: BookView) -> StoredResult:
    # The book as the API shows it (its fields, names and order): the bodies stored before
    # migration 0011 are this document, so the migration converts them in SQL, both ways.
    book = view.book
    return {
        "id": str(book.id),
        "title": book.title,
        "authors": [{"id": str(a.id), "name": a.name} for a in view.authors],
        "isbn13": book.isbn13,
        "publication_year": book.publication_year,
        "language": book.language,
        "created_at": stored_time(book.created_at),
        "updated_at": stored_time(book.updated_at),
        "version": book.version,
    }


def _read_view(stored: StoredResult) -> BookView:
    authors = tuple(AuthorRef(id=uuid.UUID(a["id"]), name=a["name"]) for a in stored["authors"])
    book = Book(
        id=uuid.UUID(stored["id"]),
        title=stored["title"],
        author_ids=tuple(a.id for a in authors),
        isbn13=stored["isbn13"],
        publication_year=stored["publication_year"],
        language=stored["language"],
        created_at=read_time(stored["created_at"]),
        updated_at=read_time(stored["updated_at"]),
        version=stored["version"],
    )
    return BookView(book=book, authors=authors)


BOOK_VIEW_CODEC = ResultCodec(encode=_stored_view, decode=_read_view)
"""A new book's view as an Idempotency-Key stores it: the book's document (JSON)."""


class BookService:
    """Adds, revises and removes books (the reads are BookQueries's).

    Authors are not looked up before a write: the foreign keys refuse an unknown one, and the
    database keeps each book's credited names itself (read back in the same transaction). Only
    a refused write asks the author directory which ids were unknown, to name exactly them.
    """

    def __init__(
        self,
        uow: BooksUnitOfWork,
        authors: AuthorDirectory,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow = uow
        self._authors = authors
        self._clock = clock

    @overload
    async def add_book(
        self, command: AddBook, once: None = None, origin: Origin = NO_ORIGIN
    ) -> BookView: ...

    @overload
    async def add_book(
        self, command: AddBook, once: Idempotency, origin: Origin = NO_ORIGIN
    ) -> Once[BookView]: ...

    async def add_book(
        self,
        command: AddBook,
        once: Idempotency | None = None,
        origin: Origin = NO_ORIGIN,
    ) -> BookView | Once[BookView]:
        """Create a book crediting existing authors (and its ``book.created``, from ``origin``).

        With ``once``, the new book's view is recorded under the client's key in the same
        transaction, and a repeat of the request gets that view again (``replayed``) instead of
        a second book.
        """
        now = self._clock()
        book = Book.create(
            title=command.title,
            author_ids=command.author_ids,
            isbn=command.isbn,
            publication_year=command.publication_year,
            language=command.language,
            now=now,
        )
        try:
            async with self._uow as uow:

                async def write() -> BookView:
                    # Recorded first: the book's INSERT takes it along (no round trip of its own).
                    uow.outbox.record(book_created(book, origin))
                    await uow.books.add(book)
                    return _view(book, await uow.books.credited_names(book.id))

                result = await (
                    write()
                    if once is None
                    else perform_once(uow.idempotency, once, now, write, BOOK_VIEW_CODEC)
                )
                await uow.commit()
        except UnknownAuthorsError:
            await self._name_the_unknown(book.author_ids)
            raise
        except DuplicateIsbnError as refused:
            await self._name_the_holder(refused)
            raise
        return result

    async def revise_book(
        self,
        book_id: uuid.UUID,
        command: ReviseBook,
        if_match: IfMatch = ANY_VERSION,
        origin: Origin = NO_ORIGIN,
    ) -> BookView:
        """Apply a partial update to the version ``if_match`` accepts; the version grows only
        when something changed (PreconditionFailedError if the book is at another version),
        and only then is a ``book.updated`` recorded."""
        try:
            async with self._uow as uow:
                book = await self._require(uow, book_id)  # an unknown book is a 404 first
                if_match.check("Book", book_id, book.version)
                before = book_fields(book)
                changed = book.revise(
                    title=command.title,
                    author_ids=command.author_ids,
                    isbn=command.isbn,
                    publication_year=command.publication_year,
                    language=command.language,
                    now=self._clock(),
                )
                if changed:
                    with if_match.guard("Book", book_id):
                        await uow.books.update(book)
                    uow.outbox.record(book_updated(book, before, origin))
                names = await uow.books.credited_names(book_id)
                if changed:
                    await uow.commit()
        except UnknownAuthorsError:
            if command.author_ids is not UNSET:
                await self._name_the_unknown(command.author_ids)
            raise
        except DuplicateIsbnError as refused:
            await self._name_the_holder(refused)
            raise
        return _view(book, names)

    async def delete_book(
        self, book_id: uuid.UUID, if_match: IfMatch = ANY_VERSION, origin: Origin = NO_ORIGIN
    ) -> None:
        """Remove a book and its credits, if it is at a version ``if_match`` accepts."""
        async with self._uow as uow:
            book = await self._require(uow, book_id)
            if_match.check("Book", book_id, book.version)
            with if_match.guard("Book", book_id):
                await uow.books.delete(book)
            uow.outbox.record(book_deleted(book, origin, now=self._clock()))
            await uow.commit()

    async def _name_the_unknown(self, author_ids: Sequence[uuid.UUID]) -> None:
        """UnknownAuthorsError naming exactly the ids no author has (a refused write's reason)."""
        names = await self._authors.names_of(author_ids)
        unknown = [a for a in author_ids if a not in names]
        if unknown:
            raise UnknownAuthorsError(unknown) from None

    async def _name_the_holder(self, refused: DuplicateIsbnError) -> None:
        """DuplicateIsbnError naming the book that holds the ISBN (a refused write's reason).

        The unique constraint refused the write; the holder is looked up after, in a new
        transaction, where the book that won a race is committed and visible. (If it was
        removed meanwhile, the error names no book.)
        """
        if refused.existing_id is not None:
            return
        async with self._uow as uow:
            holder = await uow.books.holder_of_isbn(refused.isbn13)
        if holder is not None:
            raise DuplicateIsbnError(refused.isbn13, holder) from None

    @staticmethod
    async def _require(uow: BooksUnitOfWork, book_id: uuid.UUID) -> Book:
        book = await uow.books.get(book_id)
        if book is None:
            raise BookNotFoundError(book_id)
        return book


def _view(book: Book, names: Sequence[str]) -> BookView:
    """The book with the names the database keeps for its credits, in credit order."""
    return BookView(
        book=book,
        authors=tuple(AuthorRef(id=a, name=n) for a, n in zip(book.author_ids, names, strict=True)),
    )
