"""The SQLAlchemy adapter of AuthorNameCopies: one short transaction per call."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

_KEEP = text(
    """
    INSERT INTO credited_author_names (author_id, name, version)
    VALUES (:author_id, :name, :version)
    ON CONFLICT (author_id) DO UPDATE SET name = excluded.name, version = excluded.version
    WHERE credited_author_names.version < excluded.version
    """
)
# Each credited name from the copy (a name not kept yet stays as it is); a book already right
# is not written (no new row version, no index churn).
_REFRESH = text(
    """
    UPDATE books SET credited_names = c.names
    FROM (
        SELECT b.id,
               array_agg(coalesce(n.name, b.credited_names[k.ord]) ORDER BY k.ord) AS names
        FROM books b
        CROSS JOIN LATERAL unnest(b.credited_ids) WITH ORDINALITY AS k(author_id, ord)
        LEFT JOIN credited_author_names n ON n.author_id = k.author_id
        WHERE b.id IN (SELECT CAST(:book_id AS uuid) UNION
                       SELECT book_id FROM book_authors WHERE author_id = :author_id)
        GROUP BY b.id
    ) AS c
    WHERE books.id = c.id AND books.credited_names IS DISTINCT FROM c.names
    """
)


class SqlAlchemyAuthorNameCopies:
    """Keeps ``credited_author_names`` and the books' ``credited_names`` from it."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def author_named(self, author_id: uuid.UUID, name: str, version: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_KEEP, {"author_id": author_id, "name": name, "version": version})
            await session.execute(_REFRESH, {"book_id": None, "author_id": author_id})

    async def refresh_book(self, book_id: uuid.UUID) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_REFRESH, {"book_id": book_id, "author_id": None})
