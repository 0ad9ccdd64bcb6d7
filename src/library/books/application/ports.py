"""What the books use cases need from the outside world."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

from library.books.domain.repository import BookRepository
from shared.idempotency import IdempotencyStore
from shared.unit_of_work import UnitOfWork


class BooksUnitOfWork(UnitOfWork, Protocol):
    """A transaction over the books' repository."""

    books: BookRepository
    idempotency: IdempotencyStore


class AuthorDirectory(Protocol):
    """What the books context needs to know about authors (implemented by the authors context)."""

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids``; unknown ids are absent."""
        ...
