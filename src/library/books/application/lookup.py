"""Read-only questions other contexts ask about books (served through ``library.books.public``)."""

from __future__ import annotations

import uuid

from library.books.application.ports import BooksUnitOfWork


class BookLookup:
    """Answers whether an author is credited on any book."""

    def __init__(self, uow: BooksUnitOfWork) -> None:
        self._uow = uow

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        async with self._uow as uow:
            return await uow.books.author_has_books(author_id)
