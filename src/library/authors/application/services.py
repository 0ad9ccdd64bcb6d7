"""The authors use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import overload

from library.authors.application.ports import AuthorsUnitOfWork, BookCatalog
from library.authors.domain.errors import AuthorHasBooksError, AuthorNotFoundError
from library.authors.domain.events import (
    author_created,
    author_deleted,
    author_fields,
    author_updated,
)
from library.authors.domain.model import Author
from shared.kernel.events import NO_ORIGIN, Origin
from shared.kernel.idempotency import (
    Idempotency,
    Once,
    ResultCodec,
    StoredResult,
    perform_once,
    read_time,
    stored_time,
)
from shared.kernel.preconditions import ANY_VERSION, IfMatch
from shared.kernel.values import UNSET, Unset, utc_now


@dataclass(frozen=True, slots=True)
class RegisterAuthor:
    """Add an author to the catalog."""

    name: str
    birth_year: int | None = None
    death_year: int | None = None
    bio: str | None = None


@dataclass(frozen=True, slots=True)
class ReviseAuthor:
    """Change some of an author's fields; UNSET fields stay as they are."""

    name: str | Unset = UNSET
    birth_year: int | Unset | None = UNSET
    death_year: int | Unset | None = UNSET
    bio: str | Unset | None = UNSET


def _stored_author(author: Author) -> StoredResult:
    # The author as the API shows them (its fields, names and order): the bodies stored before
    # migration 0011 are this document, so the migration converts them in SQL, both ways.
    return {
        "id": str(author.id),
        "name": author.name,
        "birth_year": author.birth_year,
        "death_year": author.death_year,
        "bio": author.bio,
        "created_at": stored_time(author.created_at),
        "updated_at": stored_time(author.updated_at),
        "version": author.version,
    }


def _read_author(stored: StoredResult) -> Author:
    return Author(
        id=uuid.UUID(stored["id"]),
        name=stored["name"],
        birth_year=stored["birth_year"],
        death_year=stored["death_year"],
        bio=stored["bio"],
        created_at=read_time(stored["created_at"]),
        updated_at=read_time(stored["updated_at"]),
        version=stored["version"],
    )


AUTHOR_CODEC = ResultCodec(encode=_stored_author, decode=_read_author)
"""A new author as an Idempotency-Key stores them: the author's document (JSON)."""


class AuthorService:
    """Registers, revises and removes authors (the reads are AuthorQueries's)."""

    def __init__(
        self,
        uow: AuthorsUnitOfWork,
        books: BookCatalog,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow = uow
        self._books = books
        self._clock = clock

    @overload
    async def register_author(
        self, command: RegisterAuthor, once: None = None, origin: Origin = NO_ORIGIN
    ) -> Author: ...

    @overload
    async def register_author(
        self, command: RegisterAuthor, once: Idempotency, origin: Origin = NO_ORIGIN
    ) -> Once[Author]: ...

    async def register_author(
        self,
        command: RegisterAuthor,
        once: Idempotency | None = None,
        origin: Origin = NO_ORIGIN,
    ) -> Author | Once[Author]:
        """Create an author (and its ``author.created`` event, from ``origin``).

        With ``once``, the new author is recorded under the client's key in the same
        transaction, and a repeat of the request gets that author again (``replayed``) instead
        of a second author (and no second event).
        """
        now = self._clock()
        author = Author.register(
            name=command.name,
            birth_year=command.birth_year,
            death_year=command.death_year,
            bio=command.bio,
            now=now,
        )
        async with self._uow as uow:

            async def write() -> Author:
                await uow.authors.add(author)
                uow.outbox.record(author_created(author, origin))
                return author

            result = await (
                write()
                if once is None
                else perform_once(uow.idempotency, once, now, write, AUTHOR_CODEC)
            )
            await uow.commit()
        return result

    async def revise_author(
        self,
        author_id: uuid.UUID,
        command: ReviseAuthor,
        if_match: IfMatch = ANY_VERSION,
        origin: Origin = NO_ORIGIN,
    ) -> Author:
        """Apply a partial update to the version ``if_match`` accepts; the version grows only
        when something changed (PreconditionFailedError if the author is at another version),
        and only then is an ``author.updated`` recorded."""
        async with self._uow as uow:
            author = await self._require(uow, author_id)
            if_match.check("Author", author_id, author.version)
            before = author_fields(author)
            changed = author.revise(
                name=command.name,
                birth_year=command.birth_year,
                death_year=command.death_year,
                bio=command.bio,
                now=self._clock(),
            )
            if changed:
                with if_match.guard("Author", author_id):
                    await uow.authors.update(author)
                uow.outbox.record(author_updated(author, before, origin))
                await uow.commit()
        return author

    async def delete_author(
        self, author_id: uuid.UUID, if_match: IfMatch = ANY_VERSION, origin: Origin = NO_ORIGIN
    ) -> None:
        """Remove an author who is credited on no book (AuthorHasBooksError otherwise), if they
        are at a version ``if_match`` accepts."""
        # Asked before the transaction opens, so a request never holds two pooled connections.
        # A book credited in between is still caught: the foreign key refuses the delete.
        has_books = await self._books.author_has_books(author_id)
        async with self._uow as uow:
            author = await self._require(uow, author_id)
            if_match.check("Author", author_id, author.version)
            if has_books:
                raise AuthorHasBooksError(author_id)
            with if_match.guard("Author", author_id):
                await uow.authors.delete(author)
            uow.outbox.record(author_deleted(author, origin, now=self._clock()))
            await uow.commit()

    @staticmethod
    async def _require(uow: AuthorsUnitOfWork, author_id: uuid.UUID) -> Author:
        author = await uow.authors.get(author_id)
        if author is None:
            raise AuthorNotFoundError(author_id)
        return author
