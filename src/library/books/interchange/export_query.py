"""The whole catalog as export records, streamed from a server-side cursor in constant memory.

One snapshot (a REPEATABLE READ, read-only transaction): the count and the records agree even
while the API writes. The credited names are the copy the database keeps with each book, in
credit order, so no join is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from library.books.interchange.importer import LOCAL_REF_PREFIX, ExportedBook

# Byte order (COLLATE "C"), not the database's collation: two databases export in one order.
# The prefix of a book made through the API is the statement's one parameter ($1).
_RECORDS = """
    SELECT coalesce(external_ref, $1::text || id::text) COLLATE "C" AS ref,
           title, credited_names, isbn13, publication_year, language
    FROM books
    ORDER BY 1
"""
_COUNT = "SELECT count(*) FROM books"
PREFETCH = 1000


class CatalogExport:
    """Reads the catalog for an export on one asyncpg connection (the caller's)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.total = 0

    async def records(self) -> AsyncIterator[ExportedBook]:
        """Every book, ordered by ref; ``total`` is set (the snapshot's count) before the first."""
        conn = self._connection
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # An operator's command, not a request: sorting a large catalog may take longer
            # than a request's statement timeout.
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            self.total = int(await conn.fetchval(_COUNT))
            async for row in conn.cursor(_RECORDS, LOCAL_REF_PREFIX, prefetch=PREFETCH):
                yield (row[0], row[1], list(row[2]), row[3], row[4], row[5])
