"""The repository port of the Author aggregate."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from library.authors.domain.model import Author


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

    async def ids_by_names(self, names: Collection[str]) -> dict[str, uuid.UUID]:
        """The id of an author called exactly so, for each of ``names`` that has one.

        When several authors share a name, the earliest registered (then lowest id) answers.
        """
        ...

    async def add_many(self, authors: Sequence[Author]) -> None:
        """Stage new authors in one go."""
        ...

    async def lock_for_bulk_registration(self) -> None:
        """Make other bulk registrations wait until this unit of work ends.

        Two imports running at once would otherwise both miss a name and register it twice.
        """
        ...
