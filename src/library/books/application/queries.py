"""The books read side: the query vocabulary, flat read models, the reader port, and the
queries the API asks (CQRS: no entity, no unit of work; a row becomes JSON once)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypedDict

from library.books.application.ports import AuthorDirectory
from library.books.domain.errors import AuthorNotFoundError, BookNotFoundError
from shared.kernel.errors import RuleViolationError
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

# A search matches words (by prefix) of the title and of the authors' names; a query of at
# least this many characters also matches anywhere inside the title, as a literal substring.
SUBSTRING_MIN_LENGTH = 3


class BookSort(StrEnum):
    """The orders a book list can take; a leading ``-`` means descending. Ties break on id.

    ``relevance`` (best match first; only with a search) breaks its ties on id, descending.
    """

    RELEVANCE = "relevance"
    TITLE = "title"
    TITLE_DESC = "-title"
    PUBLICATION_YEAR = "publication_year"
    PUBLICATION_YEAR_DESC = "-publication_year"
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"

    @property
    def field(self) -> str:
        return self.value.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-") or self is BookSort.RELEVANCE


SortValue = str | int | float | datetime | None


@dataclass(frozen=True, slots=True)
class BookFilter:
    """Which books a list shows; None means no restriction."""

    q: str | None = None
    author_id: uuid.UUID | None = None
    language: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    isbn13: str | None = None  # normalised: at most one book has it


@dataclass(frozen=True, slots=True)
class BookPageQuery:
    """Up to ``limit`` books matching ``filter`` in ``sort`` order, after the key ``after``
    (a sort value and an id: where the previous page ended)."""

    filter: BookFilter
    sort: BookSort
    limit: int
    after: tuple[SortValue, uuid.UUID] | None = None


class CreditRead(TypedDict):
    """An author as a book credits them."""

    id: str
    name: str


# Read models are plain dicts (TypedDicts): made by the thousand per second, and serialised by
# orjson on its fastest path, about twice as fast as dataclasses. Treated as immutable.
class BookRead(TypedDict):
    """A book as the API shows it (fields in the order of the JSON document)."""

    id: str
    title: str
    authors: list[CreditRead]
    isbn13: str | None
    publication_year: int | None
    language: str | None
    # RFC 3339 in UTC, as the API writes times: the read pool's wire form, sent on as it is.
    created_at: str
    updated_at: str
    version: int


@dataclass(frozen=True, slots=True)
class BookSlice:
    """A page of books in the query's order.

    ``more`` says whether others follow the last one; ``last_key`` is the last book's value in
    the sort order (with its id, where the next page starts). Only the last book's key is
    computed: it is the only one a cursor needs.
    """

    books: list[BookRead]
    more: bool
    last_key: SortValue = None


class BookReader(Protocol):
    """Reads books as the API shows them: one statement each, no transaction."""

    async def get(self, book_id: uuid.UUID) -> BookRead | None:
        """The book with this id, or None."""
        ...

    async def page(self, query: BookPageQuery) -> BookSlice:
        """Up to ``query.limit`` books matching the query, in its order; whether more follow."""
        ...

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        ...

    async def known_keys(
        self, isbns: Collection[str], external_refs: Collection[str]
    ) -> tuple[set[str], set[str]]:
        """Which of these ISBN-13s and which of these external references are taken."""
        ...


@dataclass(frozen=True, slots=True)
class ListBooks:
    """Which books to list, in what order, from where."""

    filter: BookFilter
    sort: BookSort | None = None  # relevance with a search, created_at without
    limit: int = 20
    cursor: str | None = None


class BookQueries:
    """The books' read use cases. Stateless: built once, shared by every request."""

    def __init__(self, reader: BookReader, authors: AuthorDirectory) -> None:
        self._reader = reader
        self._authors = authors

    async def get_book(self, book_id: uuid.UUID) -> BookRead:
        """The book with this id; BookNotFoundError if there is none."""
        book = await self._reader.get(book_id)
        if book is None:
            raise BookNotFoundError(book_id)
        return book

    async def list_books(self, request: ListBooks) -> Page[BookRead]:
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
        found = await self._reader.page(
            BookPageQuery(filter=f, sort=sort, limit=request.limit, after=after)
        )
        next_cursor = _encode_key(sort, found) if found.more and found.books else None
        return Page(items=found.books, next_cursor=next_cursor)

    async def list_author_books(self, author_id: uuid.UUID, request: ListBooks) -> Page[BookRead]:
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
            isbn13=f.isbn13,
        )
        return await self.list_books(
            ListBooks(filter=scoped, sort=request.sort, limit=request.limit, cursor=request.cursor)
        )

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        return await self._reader.author_has_books(author_id)


def _encode_key(sort: BookSort, found: BookSlice) -> str:
    value = found.last_key
    raw = value.isoformat() if isinstance(value, datetime) else value
    return encode_cursor(f"books:{sort.value}", [raw, found.books[-1]["id"]])


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
