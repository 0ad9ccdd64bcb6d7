"""The asyncpg adapter of the AuthorReader port: one statement, on the read pool."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from shared.persistence.reads import ReadPool

_NAMES = "SELECT id, name FROM authors WHERE id = ANY($1::uuid[])"


class AsyncpgAuthorReader:
    """Reads authors on the read pool (no session, no transaction)."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def names(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = [str(a) for a in author_ids]
        if not ids:
            return {}
        rows = await self._pool.fetch(_NAMES, ids)
        return {uuid.UUID(row[0]): row[1] for row in rows}
