"""The repository port of the Book aggregate (the write side; reads have BookReader)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from library.books.domain.model import Book


class BookRepository(Protocol):
    """Stores and finds books. Never commits: the unit of work does."""

    async def get(self, book_id: uuid.UUID) -> Book | None:
        """The book with this id, or None."""
        ...

    async def add(self, book: Book) -> None:
        """Stage a new book (DuplicateIsbnError if its ISBN is taken, UnknownAuthorsError if an
        author does not exist)."""
        ...

    async def update(self, book: Book) -> None:
        """Stage the changes of a book loaded from this repository; bumps its version."""
        ...

    async def delete(self, book: Book) -> None:
        """Stage the deletion of a book loaded from this repository."""
        ...

    async def holder_of_isbn(self, isbn13: str) -> uuid.UUID | None:
        """The id of the book with this ISBN-13, or None."""
        ...

    async def credited_names(self, book_id: uuid.UUID) -> tuple[str, ...]:
        """The names of a stored (or staged and flushed) book's authors, in credit order, as the
        database keeps them with the book."""
        ...

    async def add_many(self, books: Sequence[Book]) -> set[uuid.UUID]:
        """Stage new books in one go; the ids of those added.

        A book whose ISBN or external reference is already taken (by a stored book or by an
        earlier one of ``books``) is skipped, not an error: that is how a re-import finds it.
        """
        ...
