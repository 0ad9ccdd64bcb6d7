"""Read-only questions other contexts ask about authors (served by ``library.authors.public``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from library.authors.application.ports import AuthorReader


class AuthorLookup:
    """Answers which authors exist and what they are called. Stateless: built once."""

    def __init__(self, reader: AuthorReader) -> None:
        self._reader = reader

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids``."""
        ids = set(author_ids)
        if not ids:
            return {}
        return await self._reader.names(ids)
