"""The asyncpg adapter of the ChangeReader port: one statement per read, on the read pool.

Visibility is the statement's own snapshot: ``pg_current_snapshot()`` is the snapshot the
statement reads with, so "final" (xid below its xmin) and "visible" are judged together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from library.changes.application.queries import CursorExpiredError, FeedEvent, Position
from shared.persistence.reads import ReadPool, api_time_sql

# Written out (no formatting into SQL); "xid < ..." is shared.persistence.outbox.VISIBLE_BELOW.
# The row comparison is an index range on ix_events_position / ix_events_resource. The first
# column says whether retention deleted an event after the cursor ($4: the position is a
# reader's cursor; events_pruned holds the last position pruned): then no event is read, and
# the statement still answers one row (the page is refused, not shown with a gap).
_EXPIRED = """
    SELECT g.expired, e.id, e.xid, e.type, CAST(e.resource_id AS text), e.version,
           {occurred_at}, CAST(e.data AS text), e.request_id, e.actor
    FROM (
        SELECT $4 AND EXISTS (
            SELECT 1 FROM events_pruned p WHERE (p.xid, p.id) > ($1, $2)
        ) AS expired
    ) AS g
    LEFT JOIN LATERAL (
        SELECT * FROM events
        WHERE {resource}xid < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)
          AND (xid, id) > ($1, $2)
        ORDER BY xid, id
        LIMIT $3
    ) AS e ON NOT g.expired
    ORDER BY e.xid, e.id
"""
# The time as the API writes it, as text (shared.persistence.reads.api_time_sql): a constant.
_OCCURRED_AT = api_time_sql("e.occurred_at")
_AFTER = _EXPIRED.format(resource="", occurred_at=_OCCURRED_AT)
_AFTER_FOR_RESOURCE = _EXPIRED.format(
    resource="resource_id = $5\n          AND ", occurred_at=_OCCURRED_AT
)
_END = "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"


class AsyncpgChangeReader:
    """Reads the outbox on the read pool."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def after(
        self, position: Position, limit: int, resource_id: uuid.UUID | None, *, cursor: bool
    ) -> Sequence[FeedEvent]:
        if resource_id is None:
            rows = await self._pool.fetch(_AFTER, position.xid, position.id, limit, cursor)
        else:
            rows = await self._pool.fetch(
                _AFTER_FOR_RESOURCE, position.xid, position.id, limit, cursor, resource_id
            )
        if rows[0][0]:
            raise CursorExpiredError()
        if rows[0][1] is None:  # nothing after the position (the one row of the outer join)
            return []
        return [_event(row) for row in rows]

    async def end(self) -> Position:
        row = await self._pool.fetchrow(_END)
        # Every later event's transaction is at or after the oldest one running now.
        return Position(int(row[0]) if row is not None else 0, 0)


def _event(row: Any) -> FeedEvent:
    return FeedEvent(
        position=Position(row[2], row[1]),
        document={
            "id": str(row[1]),
            "type": row[3],
            "resource_id": row[4],
            "version": row[5],
            "occurred_at": row[6],
            "data": orjson.Fragment(row[7]),  # JSON already: sent as PostgreSQL wrote it
            "request_id": row[8],
            "actor": row[9],
        },
    )
