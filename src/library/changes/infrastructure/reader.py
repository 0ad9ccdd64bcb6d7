"""The asyncpg adapter of the ChangeReader port: one statement per read, on the read pool.

Visibility is the statement's own snapshot: ``pg_current_snapshot()`` is the snapshot the
statement reads with, so "final" (xid below its xmin) and "visible" are judged together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from library.changes.application.queries import FeedEvent, Position
from shared.persistence.reads import ReadPool

# Written out (no formatting into SQL); "xid < ..." is shared.persistence.outbox.VISIBLE_BELOW.
# The row comparison is an index range on ix_events_position / ix_events_resource.
_AFTER = """
    SELECT id, xid, type, CAST(resource_id AS text), version, occurred_at, CAST(data AS text),
           request_id, actor
    FROM events
    WHERE xid < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)
      AND (xid, id) > ($1, $2)
    ORDER BY xid, id
    LIMIT $3
"""
_AFTER_FOR_RESOURCE = """
    SELECT id, xid, type, CAST(resource_id AS text), version, occurred_at, CAST(data AS text),
           request_id, actor
    FROM events
    WHERE resource_id = $4
      AND xid < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)
      AND (xid, id) > ($1, $2)
    ORDER BY xid, id
    LIMIT $3
"""
_END = "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"


class AsyncpgChangeReader:
    """Reads the outbox on the read pool."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def after(
        self, position: Position, limit: int, resource_id: uuid.UUID | None
    ) -> Sequence[FeedEvent]:
        if resource_id is None:
            rows = await self._pool.fetch(_AFTER, position.xid, position.id, limit)
        else:
            rows = await self._pool.fetch(
                _AFTER_FOR_RESOURCE, position.xid, position.id, limit, resource_id
            )
        return [_event(row) for row in rows]

    async def end(self) -> Position:
        row = await self._pool.fetchrow(_END)
        # Every later event's transaction is at or after the oldest one running now.
        return Position(int(row[0]) if row is not None else 0, 0)


def _event(row: Any) -> FeedEvent:
    return FeedEvent(
        position=Position(row[1], row[0]),
        document={
            "id": str(row[0]),
            "type": row[2],
            "resource_id": row[3],
            "version": row[4],
            "occurred_at": row[5],
            "data": orjson.Fragment(row[6]),  # JSON already: sent as PostgreSQL wrote it
            "request_id": row[7],
            "actor": row[8],
        },
    )
