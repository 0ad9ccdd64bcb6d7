"""The SQLAlchemy adapter of the AuthorRepository port."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import (
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library.authors.domain.errors import AuthorHasBooksError
from library.authors.domain.model import Author
from library.authors.infrastructure.models import AuthorRow
from shared.kernel.errors import ConcurrentUpdateError
from shared.persistence.db import flush
from shared.persistence.errors import REFERENCE_VIOLATIONS, sqlstate

# Key of the transaction-scoped advisory lock that serialises bulk registrations.
_BULK_REGISTRATION_LOCK = 0x6C6962_0001  # "lib" + 1
_INSERT_AUTHORS = text(
    """
    INSERT INTO authors (id, name, created_at, updated_at)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:names AS text[]),
        CAST(:created AS timestamptz[]), CAST(:updated AS timestamptz[])
    )
    """
)


class SqlAlchemyAuthorRepository:
    """Maps Author <-> AuthorRow on one session. Adds and flushes; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, author_id: uuid.UUID) -> Author | None:
        row = await self._session.get(AuthorRow, author_id)
        return None if row is None else _to_domain(row)

    async def add(self, author: Author) -> None:
        row = AuthorRow(
            id=author.id,
            name=author.name,
            birth_year=author.birth_year,
            death_year=author.death_year,
            bio=author.bio,
            created_at=author.created_at,
            updated_at=author.updated_at,
        )
        self._session.add(row)
        await self._session.flush()
        author.version = row.version

    async def update(self, author: Author) -> None:
        row = await self._loaded_row(author)
        row.name = author.name
        row.birth_year = author.birth_year
        row.death_year = author.death_year
        row.bio = author.bio
        row.updated_at = author.updated_at
        await flush(self._session, kind="Author", resource_id=author.id)
        author.version = row.version

    async def delete(self, author: Author) -> None:
        row = await self._loaded_row(author)
        await self._session.delete(row)
        try:
            await flush(self._session, kind="Author", resource_id=author.id)
        except IntegrityError as exc:
            # A book credited this author after our check: the foreign key keeps the credit.
            if sqlstate(exc) in REFERENCE_VIOLATIONS:
                raise AuthorHasBooksError(author.id) from None
            raise

    async def ids_by_names(self, names: Collection[str]) -> dict[str, uuid.UUID]:
        if not names:
            return {}
        result = await self._session.execute(
            select(AuthorRow.name, AuthorRow.id)
            .where(AuthorRow.name == func.any(bindparam("names", list(names), ARRAY(Text))))
            .order_by(AuthorRow.name, AuthorRow.created_at, AuthorRow.id)
            .ext(distinct_on(AuthorRow.name))
        )
        return {row.name: row.id for row in result}

    async def add_many(self, authors: Sequence[Author]) -> None:
        if not authors:
            return
        await self._session.execute(
            _INSERT_AUTHORS,
            {
                "ids": [a.id for a in authors],
                "names": [a.name for a in authors],
                "created": [a.created_at for a in authors],
                "updated": [a.updated_at for a in authors],
            },
        )
        for author in authors:
            author.version = 1

    async def lock_for_bulk_registration(self) -> None:
        await self._session.execute(select(func.pg_advisory_xact_lock(_BULK_REGISTRATION_LOCK)))

    async def _loaded_row(self, author: Author) -> AuthorRow:
        row = await self._session.get(AuthorRow, author.id)
        # The entity may come from an earlier transaction: its version must still be current.
        if row is None or row.version != author.version:
            raise ConcurrentUpdateError.of("Author", author.id)
        return row


def _to_domain(row: AuthorRow) -> Author:
    return Author(
        id=row.id,
        name=row.name,
        birth_year=row.birth_year,
        death_year=row.death_year,
        bio=row.bio,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
