"""The books use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import overload

from library.books.application.ports import AuthorDirectory, BooksUnitOfWork
from library.books.domain.errors import AuthorNotFoundError, BookNotFoundError, UnknownAuthorsError
from library.books.domain.model import Book
from library.books.domain.repository import (
    BookFilter,
    BookListing,
    BookQuery,
    BookSort,
    SortValue,
)
from shared.kernel.errors import RuleViolationError
from shared.kernel.idempotency import Idempotency, StoredResponse, perform_once
from shared.kernel.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    key_datetime,
    key_float,
    key_optional_int,
    key_str,
    key_uuid,
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
class ListBooks:
    """Which books to list, in what order, from where."""

    filter: BookFilter
    sort: BookSort | None = None  # relevance with a search, created_at without
    limit: int = 20
    cursor: str | None = None


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


class BookService:
    """Adds, finds, revises and removes books.

    The author directory is asked outside the book transaction, so one request never holds two
    pooled connections at once; the foreign keys catch an author removed in between.
    """

    def __init__(
        self,
        uow: BooksUnitOfWork,
        authors: AuthorDirectory,
        clock: Callable[[], datetime] = utc_now,
        reads: BooksUnitOfWork | None = None,
    ) -> None:
        self._uow = uow
        # Reads may use a cheaper unit of work (no transaction); by default the same one.
        self._reads = reads or uow
        self._authors = authors
        self._clock = clock

    @overload
    async def add_book(self, command: AddBook, once: None = None) -> BookView: ...

    @overload
    async def add_book(self, command: AddBook, once: Idempotency[BookView]) -> StoredResponse: ...

    async def add_book(
        self, command: AddBook, once: Idempotency[BookView] | None = None
    ) -> BookView | StoredResponse:
        """Create a book crediting existing authors.

        With ``once``, the response is recorded under the client's key in the same transaction,
        and a repeat of the request gets that response instead of a second book.
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
        names = await self._require_authors(book.author_ids)
        async with self._uow as uow:

            async def write() -> BookView:
                await uow.books.add(book)
                return _view(book, names)

            result = await (
                write() if once is None else perform_once(uow.idempotency, once, now, write)
            )
            await uow.commit()
        return result

    async def get_book(self, book_id: uuid.UUID) -> BookView:
        """The book with this id; BookNotFoundError if there is none."""
        async with self._reads as uow:
            listing = await uow.books.find(book_id)
        if listing is None:
            raise BookNotFoundError(book_id)
        return _listed_view(listing)

    async def list_books(self, request: ListBooks) -> Page[BookView]:
        """A page of books matching the filter, in the requested order."""
        f = request.filter
        if f.year_from is not None and f.year_to is not None and f.year_from > f.year_to:
            raise RuleViolationError.on_field(
                "year_to", f"year_to ({f.year_to}) must not be before year_from ({f.year_from})"
            )
        sort = request.sort or (BookSort.RELEVANCE if f.q else BookSort.CREATED_AT)
        if sort is BookSort.RELEVANCE and not f.q:
            raise RuleViolationError.on_field("sort", "sort=relevance needs a search (q)")
        after = None if request.cursor is None else _decode_key(sort, request.cursor)
        query = BookQuery(filter=f, sort=sort, limit=request.limit + 1, after=after)
        async with self._reads as uow:
            listings = list(await uow.books.list_page(query))
        more = len(listings) > request.limit
        listings = listings[: request.limit]
        next_cursor = _encode_key(sort, listings[-1]) if more else None
        return Page(items=[_listed_view(b) for b in listings], next_cursor=next_cursor)

    async def list_author_books(self, author_id: uuid.UUID, request: ListBooks) -> Page[BookView]:
        """A page of the books crediting this author; AuthorNotFoundError if they do not exist."""
        if not await self._authors.names_of([author_id]):
            raise AuthorNotFoundError(author_id)
        f = request.filter
        scoped = BookFilter(
            q=f.q,
            author_id=author_id,
            language=f.language,
            year_from=f.year_from,
            year_to=f.year_to,
        )
        return await self.list_books(
            ListBooks(filter=scoped, sort=request.sort, limit=request.limit, cursor=request.cursor)
        )

    async def revise_book(
        self, book_id: uuid.UUID, command: ReviseBook, if_match: IfMatch = ANY_VERSION
    ) -> BookView:
        """Apply a partial update to the version ``if_match`` accepts; the version grows only
        when something changed (PreconditionFailedError if the book is at another version)."""
        new_names = None
        if command.author_ids is not UNSET:
            try:
                new_names = await self._require_authors(command.author_ids)
            except UnknownAuthorsError:
                async with self._uow as uow:
                    await self._require(uow, book_id)  # an unknown book is a 404 first
                raise
        async with self._uow as uow:
            book = await self._require(uow, book_id)
            if_match.check("Book", book_id, book.version)
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
                await uow.commit()
        names = (
            new_names if new_names is not None else await self._authors.names_of(book.author_ids)
        )
        return _view(book, names)

    async def delete_book(self, book_id: uuid.UUID, if_match: IfMatch = ANY_VERSION) -> None:
        """Remove a book and its credits, if it is at a version ``if_match`` accepts."""
        async with self._uow as uow:
            book = await self._require(uow, book_id)
            if_match.check("Book", book_id, book.version)
            with if_match.guard("Book", book_id):
                await uow.books.delete(book)
            await uow.commit()

    async def _require_authors(self, author_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        names = await self._authors.names_of(author_ids)
        unknown = [a for a in author_ids if a not in names]
        if unknown:
            raise UnknownAuthorsError(unknown)
        return names

    @staticmethod
    async def _require(uow: BooksUnitOfWork, book_id: uuid.UUID) -> Book:
        book = await uow.books.get(book_id)
        if book is None:
            raise BookNotFoundError(book_id)
        return book


def _view(book: Book, names: dict[uuid.UUID, str]) -> BookView:
    return BookView(
        book=book,
        authors=tuple(AuthorRef(id=a, name=names[a]) for a in book.author_ids if a in names),
    )


def _listed_view(listing: BookListing) -> BookView:
    book = listing.book
    return BookView(
        book=book,
        authors=tuple(
            AuthorRef(id=a, name=n)
            for a, n in zip(book.author_ids, listing.author_names, strict=True)
        ),
    )


def _encode_key(sort: BookSort, listing: BookListing) -> str:
    value = listing.key
    raw = value.isoformat() if isinstance(value, datetime) else value
    return encode_cursor(f"books:{sort.value}", [raw, str(listing.book.id)])


def _decode_key(sort: BookSort, cursor: str) -> tuple[SortValue, uuid.UUID]:
    raw_value, raw_id = decode_cursor(cursor, f"books:{sort.value}", 2)
    value: SortValue
    if sort.field == "created_at":
        value = key_datetime(raw_value)
    elif sort.field == "title":
        value = key_str(raw_value)
    elif sort is BookSort.RELEVANCE:
        value = key_float(raw_value)
    else:
        value = key_optional_int(raw_value)
    return value, key_uuid(raw_id)
