"""The books' copy of their authors' names, kept from the authors' events.

The books context shows each book with its authors' names (one row, one read). It learns of
a new name from ``author.created`` / ``author.updated`` (delivered by the outbox relay, at least
once, in commit order) and of a book's credits from ``book.created`` / ``book.updated``, so a
book created while its author was being renamed is corrected when its own event arrives: the
rename race is closed whichever commits first (docs/events.md, "Relay").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from shared.kernel.events import DomainEvent

# The authors' published event types (the contexts share the contract, not the code).
_AUTHOR_NAMED = frozenset({"author.created", "author.updated"})
_BOOK_CREDITED = frozenset({"book.created", "book.updated"})


class AuthorNameCopies(Protocol):
    """The books' copy of author names, and the books' credited names made from it."""

    async def apply(
        self, names: Mapping[uuid.UUID, tuple[str, int]], book_ids: Sequence[uuid.UUID]
    ) -> None:
        """Keep each author's (name, version) unless a later version is kept already; then give
        the books crediting those authors, and ``book_ids``, the kept names. Idempotent: when
        cut short, the same call again completes it (the relay delivers the batch again)."""
        ...


class CreditedNamesKeeper:
    """The relay's subscriber that keeps books' credited names current."""

    SUBSCRIBER = "books.credited_names"
    # What it reads of the feed: the events that name authors or credit them, and the data of
    # all but book.created (which always credits its authors: its id is all it needs).
    TYPES = _AUTHOR_NAMED | _BOOK_CREDITED
    DATA_OF = _AUTHOR_NAMED | {"book.updated"}

    def __init__(self, copies: AuthorNameCopies) -> None:
        self._copies = copies

    async def on_events(self, events: Sequence[DomainEvent]) -> None:
        """Apply a batch of events in feed order (other types are ignored); safe to repeat."""
        names: dict[uuid.UUID, tuple[str, int]] = {}
        books: dict[uuid.UUID, None] = {}
        for event in events:
            if event.type in _AUTHOR_NAMED and "name" in event.data:
                kept = names.get(event.resource_id)
                if kept is None or kept[1] < event.version:
                    names[event.resource_id] = (str(event.data["name"]), event.version)
            elif event.type == "book.created" or (
                event.type in _BOOK_CREDITED and "author_ids" in event.data
            ):
                books[event.resource_id] = None
        if names or books:
            await self._copies.apply(names, list(books))
