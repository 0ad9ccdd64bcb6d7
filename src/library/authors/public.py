"""The authors context's public facade: the only module other contexts' adapters may use."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from library.authors.application.queries import AuthorQueries
from library.authors.application.registry import AuthorNameRegistry, NameResolution

__all__ = ["AuthorsFacade", "NameResolution"]


class AuthorsFacade:
    """Which authors exist, their names, and authors by name for bulk imports."""

    def __init__(self, queries: AuthorQueries, registry: Callable[[], AuthorNameRegistry]) -> None:
        self._queries = queries
        self._registry = registry

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids`` (unknown ids are absent)."""
        return await self._queries.names_of(author_ids)

    async def resolve_names(
        self, names: Iterable[str], *, register_missing: bool
    ) -> NameResolution:
        """The author called exactly so for each name, registering the missing ones if asked."""
        return await self._registry().resolve(names, register_missing=register_missing)
