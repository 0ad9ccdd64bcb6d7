"""The books' copies of their credits, checked against a recomputation from the source tables.

``books.credited_ids``, ``credited_names`` and ``search_document`` are kept by triggers
(migrations 0003 and 0005) and loaded directly by the seed. Whoever wrote them, each must be
what ``refresh_book_credits`` would compute from ``book_authors`` and ``authors``: this query
recomputes that, independently of the triggers, and names the books where it differs.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_STALE = text(
    """
    SELECT b.id
    FROM books b
    LEFT JOIN LATERAL (
        SELECT coalesce(array_agg(a.id ORDER BY k.position), '{}') AS ids,
               coalesce(array_agg(a.name ORDER BY k.position), '{}') AS names
        FROM book_authors k
        JOIN authors a ON a.id = k.author_id
        WHERE k.book_id = b.id
    ) AS c ON true
    WHERE b.credited_ids IS DISTINCT FROM c.ids
       OR b.credited_names IS DISTINCT FROM c.names
       OR b.search_document
          IS DISTINCT FROM search_document(b.title, array_to_string(c.names, ' '))
    ORDER BY b.id
    """
)
_COUNTS = text(
    """
    SELECT count(*) AS books,
           count(*) FILTER (WHERE cardinality(credited_ids) > 1) AS with_coauthors
    FROM books
    """
)


@dataclass(frozen=True)
class CreditCopies:
    """How many books there are, how many have several authors, and which copies are stale."""

    books: int
    with_coauthors: int
    stale: list[uuid.UUID]


async def check_credit_copies(engine: AsyncEngine) -> CreditCopies:
    async with engine.connect() as conn:
        # Fresh statistics first: right after a bulk load, the planner may still believe the
        # tables empty (autovacuum has not analysed them yet) and recompute every book's credits
        # by scanning all of book_authors, past the statement timeout (seen on PostgreSQL 15).
        await conn.execute(text("ANALYZE books, book_authors, authors"))
        counts = (await conn.execute(_COUNTS)).one()
        stale = list(await conn.scalars(_STALE))
    return CreditCopies(books=counts.books, with_coauthors=counts.with_coauthors, stale=stale)


async def settled_credit_copies(engine: AsyncEngine) -> CreditCopies:
    """The copies once the outbox relay has applied the renames committed so far (a rename
    reaches the books' copy through ``author.updated``, a few milliseconds after its commit)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        copies = await check_credit_copies(engine)
        if not copies.stale or asyncio.get_running_loop().time() > deadline:
            return copies
        await asyncio.sleep(0.05)
