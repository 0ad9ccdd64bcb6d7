"""Cross-context adapters: each implements one context's port with the other's public facade."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from library.authors.public import AuthorsFacade
from library.books.public import BooksFacade, ResolvedNames


class AuthorDirectoryAdapter:
    """The books' AuthorDirectory port, answered by the authors context."""

    def __init__(self, authors: AuthorsFacade) -> None:
        self._authors = authors

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        return await self._authors.names_of(author_ids)

    async def resolve_names(self, names: Iterable[str], *, register_missing: bool) -> ResolvedNames:
        found = await self._authors.resolve_names(names, register_missing=register_missing)
        return ResolvedNames(ids=found.ids, registered=found.registered, rejected=found.rejected)


class BookCatalogAdapter:
    """The authors' BookCatalog port, answered by the books context."""

    def __init__(self, books: BooksFacade) -> None:
        self._books = books

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        return await self._books.author_has_books(author_id)
