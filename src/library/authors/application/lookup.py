"""Read-only questions other contexts ask about authors (served by ``library.authors.public``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from library.authors.application.ports import AuthorsUnitOfWork


class AuthorLookup:
    """Answers which authors exist and what they are called, without the write-side use cases."""

    def __init__(self, uow: AuthorsUnitOfWork) -> None:
        self._uow = uow

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids``."""
        ids = set(author_ids)
        if not ids:
            return {}
        async with self._uow as uow:
            return await uow.authors.names(ids)
