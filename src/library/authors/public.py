"""The authors context's public facade: the only module other contexts' adapters may use."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from library.authors.application.lookup import AuthorLookup


class AuthorsFacade:
    """Which authors exist, and their names."""

    def __init__(self, lookup: AuthorLookup) -> None:
        self._lookup = lookup

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids`` (unknown ids are absent)."""
        return await self._lookup.names_of(author_ids)
