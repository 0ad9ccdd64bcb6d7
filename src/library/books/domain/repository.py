"""The repository port of the Book aggregate, and the vocabulary of book queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from library.books.domain.model import Book

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


@dataclass(frozen=True, slots=True)
class BookQuery:
    """Up to ``limit`` books matching ``filter`` in ``sort`` order, after the key ``after``."""

    filter: BookFilter
    sort: BookSort
    limit: int
    after: tuple[SortValue, uuid.UUID] | None = None


@dataclass(frozen=True, slots=True)
class BookListing:
    """A book as reads show it: its authors' names in credit order, its key in the list's order."""

    book: Book
    author_names: tuple[str, ...]
    key: SortValue = None


class BookRepository(Protocol):
    """Stores and finds books. Never commits: the unit of work does."""

    async def get(self, book_id: uuid.UUID) -> Book | None:
        """The book with this id, or None."""
        ...

    async def add(self, book: Book) -> None:
        """Stage a new book (DuplicateIsbnError if its ISBN is taken)."""
        ...

    async def update(self, book: Book) -> None:
        """Stage the changes of a book loaded from this repository; bumps its version."""
        ...

    async def delete(self, book: Book) -> None:
        """Stage the deletion of a book loaded from this repository."""
        ...

    async def find(self, book_id: uuid.UUID) -> BookListing | None:
        """The book with this id and its authors' names, or None (a read: nothing is staged)."""
        ...

    async def list_page(self, query: BookQuery) -> Sequence[BookListing]:
        """Up to ``query.limit`` books matching the query, in its order, with their sort keys."""
        ...

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        ...
