"""What the authors use cases need from the outside world."""

from __future__ import annotations

import uuid
from typing import Protocol

from library.authors.domain.repository import AuthorRepository
from shared.kernel.events import Outbox
from shared.kernel.idempotency import IdempotencyStore
from shared.kernel.unit_of_work import UnitOfWork


class AuthorsUnitOfWork(UnitOfWork, Protocol):
    """A transaction over the authors' repository."""

    authors: AuthorRepository
    idempotency: IdempotencyStore
    outbox: Outbox


class BookCatalog(Protocol):
    """What the authors context needs to know about books (implemented by the books context)."""

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        ...
