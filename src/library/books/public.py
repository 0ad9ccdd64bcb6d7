"""The books context's public facade: the only module other contexts' adapters may use."""

from __future__ import annotations

import uuid

from library.books.application.ports import ResolvedNames
from library.books.application.queries import BookQueries

__all__ = ["BooksFacade", "ResolvedNames"]


class BooksFacade:
    """Whether an author is credited on any book."""

    def __init__(self, queries: BookQueries) -> None:
        self._queries = queries

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        """True if any book credits this author."""
        return await self._queries.author_has_books(author_id)
