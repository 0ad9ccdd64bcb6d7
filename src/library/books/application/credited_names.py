"""The books' copy of their authors' names, kept from the authors' events.

The books context shows each book with its authors' names (one row, one read). It learns of
a new name from ``author.created`` / ``author.updated`` (delivered by the outbox relay, at least
once, in commit order) and of a book's credits from ``book.created`` / ``book.updated``, so a
book created while its author was being renamed is corrected when its own event arrives: the
rename race is closed whichever commits first (docs/events.md, "Relay").
"""

from __future__ import annotations

import uuid
from typing import Protocol

from shared.kernel.events import DomainEvent

# The authors' published event types (the contexts share the contract, not the code).
_AUTHOR_NAMED = frozenset({"author.created", "author.updated"})
_BOOK_CREDITED = frozenset({"book.created", "book.updated"})


class AuthorNameCopies(Protocol):
    """The books' copy of author names, and the books' credited names made from it."""

    async def author_named(self, author_id: uuid.UUID, name: str, version: int) -> None:
        """Keep ``name`` unless a later version is kept already; then give every book crediting
        the author the kept name (idempotent)."""
        ...

    async def refresh_book(self, book_id: uuid.UUID) -> None:
        """Give the book the kept names of its credited authors (idempotent)."""
        ...


class CreditedNamesKeeper:
    """The relay's subscriber that keeps books' credited names current."""

    SUBSCRIBER = "books.credited_names"

    def __init__(self, copies: AuthorNameCopies) -> None:
        self._copies = copies

    async def on_event(self, event: DomainEvent) -> None:
        """Apply one event (any other type is ignored); safe to apply twice."""
        if event.type in _AUTHOR_NAMED and "name" in event.data:
            await self._copies.author_named(
                event.resource_id, str(event.data["name"]), event.version
            )
        elif event.type in _BOOK_CREDITED and "author_ids" in event.data:
            await self._copies.refresh_book(event.resource_id)
