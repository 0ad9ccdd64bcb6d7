"""The repository port of the Author aggregate."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from library.authors.domain.model import Author

# Typo tolerance needs a few letters: shorter queries match as substrings only.
TYPO_MIN_LENGTH = 3


@dataclass(frozen=True, slots=True)
class AuthorQuery:
    """A page of authors after the key ``after`` when given.

    Without ``q``: every author, by (name, id). With ``q``: the authors whose name contains
    ``q`` (case- and accent-insensitively, ``%`` and ``_`` literal) or, from TYPO_MIN_LENGTH
    characters, a word close to it (a typo), best match first: by (score descending, name,
    id); ``after_score`` is then the score of the last author of the previous page.
    """

    limit: int
    q: str | None = None
    after: tuple[str, uuid.UUID] | None = None
    after_score: float | None = None


@dataclass(frozen=True, slots=True)
class AuthorListing:
    """An author in a list, with how well it matches the search (None without one)."""

    author: Author
    score: float | None = None


class AuthorRepository(Protocol):
    """Stores and finds authors. Never commits: the unit of work does."""

    async def get(self, author_id: uuid.UUID) -> Author | None:
        """The author with this id, or None."""
        ...

    async def add(self, author: Author) -> None:
        """Stage a new author."""
        ...

    async def update(self, author: Author) -> None:
        """Stage the changes of an author loaded from this repository; bumps its version."""
        ...

    async def delete(self, author: Author) -> None:
        """Stage the deletion of an author loaded from this repository."""
        ...

    async def list_page(self, query: AuthorQuery) -> Sequence[AuthorListing]:
        """Up to ``query.limit`` authors matching the query, in its order."""
        ...

    async def names(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of those of ``author_ids`` that exist."""
        ...
