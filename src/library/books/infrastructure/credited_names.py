"""The SQLAlchemy adapter of AuthorNameCopies: one short transaction per batch of events."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

_KEEP = text(
    """
    INSERT INTO credited_author_names (author_id, name, version)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:versions AS int[]))
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
        WHERE b.id IN (SELECT unnest(CAST(:book_ids AS uuid[])) UNION
                       SELECT book_id FROM book_authors
                       WHERE author_id = ANY(CAST(:author_ids AS uuid[])))
        GROUP BY b.id
    ) AS c
    WHERE books.id = c.id AND books.credited_names IS DISTINCT FROM c.names
    """
)


class SqlAlchemyAuthorNameCopies:
    """Keeps ``credited_author_names`` and the books' ``credited_names`` from it."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def apply(
        self, names: Mapping[uuid.UUID, tuple[str, int]], book_ids: Sequence[uuid.UUID]
    ) -> None:
        authors = list(names)
        async with self._sessions() as session, session.begin():
            if authors:
                await session.execute(
                    _KEEP,
                    {
                        "ids": authors,
                        "names": [names[a][0] for a in authors],
                        "versions": [names[a][1] for a in authors],
                    },
                )
            await session.execute(_REFRESH, {"book_ids": list(book_ids), "author_ids": authors})
