"""What the books use cases need from the outside world."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from library.books.domain.repository import BookRepository
from shared.kernel.events import Outbox
from shared.kernel.idempotency import IdempotencyStore
from shared.kernel.unit_of_work import UnitOfWork


class BooksUnitOfWork(UnitOfWork, Protocol):
    """A transaction over the books' repository."""

    books: BookRepository
    idempotency: IdempotencyStore
    outbox: Outbox


@dataclass(frozen=True, slots=True)
class ResolvedNames:
    """Authors by name: ``ids`` for the acceptable names, ``rejected`` names with the reason,
    ``registered``: the names whose author is new (provisional ids in a dry run)."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    registered: frozenset[str] = frozenset()
    rejected: dict[str, str] = field(default_factory=dict)


class AuthorDirectory(Protocol):
    """What the books context needs to know about authors (implemented by the authors context)."""

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids``; unknown ids are absent."""
        ...

    async def resolve_names(self, names: Iterable[str], *, register_missing: bool) -> ResolvedNames:
        """The author called exactly so for each name; missing ones are registered if asked."""
        ...
