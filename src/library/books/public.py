"""The books context's public facade: the only module other contexts' adapters may use."""

from __future__ import annotations

import uuid

from library.books.application.lookup import BookLookup
from library.books.application.ports import ResolvedNames

__all__ = ["BooksFacade", "ResolvedNames"]


class BooksFacade:
    """Whether an author is credited on any book."""

    def __init__(self, lookup: BookLookup) -> None:
        self._lookup = lookup

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        return await self._lookup.author_has_books(author_id)
