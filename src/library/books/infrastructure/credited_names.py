"""The SQLAlchemy adapter of AuthorNameCopies: short transactions, a bounded number of books each.

A rename touches every book crediting the author: a batch of events after the relay fell behind
can name thousands of books. One transaction for all of them held thousands of row locks and
the feed's visibility horizon for seconds (8-14 s seen on PostgreSQL 15 under load), long enough
to reach the statement timeout and fail, and then to fail again on every redelivery of the same
batch. So the names are kept in a short transaction that also lists the books to refresh and
gives the first ``BOOKS_PER_TRANSACTION`` of them their names (a batch of a few books is one
transaction); the others follow as many at a time, in id order, each in a transaction of its
own. Each step is idempotent: a relay killed between two steps delivers the batch again and the
refresh recomputes from the kept names.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

BOOKS_PER_TRANSACTION = 200

_KEEP = text(
    """
    INSERT INTO credited_author_names (author_id, name, version)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:versions AS int[]))
    ON CONFLICT (author_id) DO UPDATE SET name = excluded.name, version = excluded.version
    WHERE credited_author_names.version < excluded.version
    """
)
# The books to refresh: those named, and those crediting the authors (read without locks).
_BOOKS = text(
    """
    SELECT id FROM unnest(CAST(:book_ids AS uuid[])) AS b(id)
    UNION
    SELECT book_id FROM book_authors WHERE author_id = ANY(CAST(:author_ids AS uuid[]))
    ORDER BY 1
    """
)
# Each credited name from the copy (a name not kept yet stays as it is). Only a book with a
# kept name that differs from its own is written (no new row version, no index churn): the
# common case, a new book whose names are current, costs the check alone.
_REFRESH = text(
    """
    UPDATE books SET credited_names = ARRAY(
        SELECT coalesce(n.name, u.name)
        FROM unnest(books.credited_ids, books.credited_names) WITH ORDINALITY
             AS u(author_id, name, ord)
        LEFT JOIN credited_author_names n ON n.author_id = u.author_id
        ORDER BY u.ord
    )
    WHERE books.id = ANY(CAST(:book_ids AS uuid[]))
      AND EXISTS (
          SELECT 1
          FROM unnest(books.credited_ids, books.credited_names) AS u(author_id, name)
          JOIN credited_author_names n ON n.author_id = u.author_id
          WHERE n.name IS DISTINCT FROM u.name
      )
    """
)


class SqlAlchemyAuthorNameCopies:
    """Keeps ``credited_author_names`` and the books' ``credited_names`` from it."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        books_per_transaction: int = BOOKS_PER_TRANSACTION,
    ) -> None:
        self._sessions = session_factory
        self._chunk = books_per_transaction

    async def apply(
        self, names: Mapping[uuid.UUID, tuple[str, int]], book_ids: Sequence[uuid.UUID]
    ) -> None:
        authors = list(names)
        chunk = self._chunk
        if not authors:
            # Only books' own events (POSTs): each refresh is one statement, atomic on its own,
            # sent without a transaction around it (no BEGIN and COMMIT round trips).
            books = sorted(set(book_ids))
            async with self._sessions() as session:
                conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                for start in range(0, len(books), chunk):
                    await conn.execute(_REFRESH, {"book_ids": books[start : start + chunk]})
            return
        async with self._sessions() as session:
            async with session.begin():
                await session.execute(
                    _KEEP,
                    {
                        "ids": authors,
                        "names": [names[a][0] for a in authors],
                        "versions": [names[a][1] for a in authors],
                    },
                )
                books = list(
                    await session.scalars(
                        _BOOKS, {"book_ids": list(book_ids), "author_ids": authors}
                    )
                )
                # The first books in the same transaction: a batch of a few is one transaction.
                if books:
                    await session.execute(_REFRESH, {"book_ids": books[:chunk]})
            for start in range(chunk, len(books), chunk):
                async with session.begin():
                    await session.execute(_REFRESH, {"book_ids": books[start : start + chunk]})
