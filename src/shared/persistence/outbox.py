"""The transactional outbox: domain events written in the transaction of their change.

``events`` holds every event; ``xid`` is the writing transaction's id (``pg_current_xact_id()``,
as a bigint), the feed's ordering key with ``id`` (docs/events.md, "Ordering").

A unit of work gives its use case a :class:`SqlAlchemyOutbox`; the events recorded on it are
written without a round trip of their own where the change allows: a repository whose write
is one statement takes the pending events into that statement (:meth:`SqlAlchemyOutbox.take`
and :data:`RECORD_EVENTS`, a data-modifying CTE), and whatever is still pending at commit is
written by :meth:`SqlAlchemyOutbox.flush` just before COMMIT. Either way, the events and the
change commit or roll back together.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Integer, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.kernel.events import DomainEvent
from shared.persistence.db import EVENTS_DROPPED, Base

# The transaction's id as a bigint (xid8 has no cast to bigint; its text form is the number).
CURRENT_XID = "CAST(CAST(pg_current_xact_id() AS text) AS bigint)"
# The oldest transaction that could still commit: every event with a smaller xid is final.
VISIBLE_BELOW = "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"


class EventRow(Base):
    """A row of ``events``: one domain event, with the id of the transaction that wrote it."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger, server_default=text(CURRENT_XID))
    type: Mapped[str] = mapped_column(Text)
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # The contexts' event types (library.*.domain.events); a new one needs a migration.
        CheckConstraint(
            "type IN ('author.created', 'author.updated', 'author.deleted', "
            "'book.created', 'book.updated', 'book.deleted')",
            name="known_type",
        ),
        Index("ix_events_position", "xid", "id"),
        Index("ix_events_resource", "resource_id", "xid", "id"),
        Index("ix_events_occurred_at", "occurred_at"),
    )


# The pending events travel as one JSON array (one parameter whatever their number); the
# statement turns it back into rows in the order given.
_EVENT_ROWS = """
    INSERT INTO events (type, resource_id, version, occurred_at, data, request_id, actor)
    SELECT e.type, e.resource_id, e.version, e.occurred_at, e.data, e.request_id, e.actor
    FROM ROWS FROM (jsonb_to_recordset(CAST(:events AS jsonb)) AS (
        type text, resource_id uuid, version integer, occurred_at timestamptz, data jsonb,
        request_id text, actor text
    )) WITH ORDINALITY AS e(type, resource_id, version, occurred_at, data, request_id, actor, n)
    ORDER BY e.n
"""
# Prefix of a statement that writes its change and the pending events at once.
RECORD_EVENTS = f"WITH recorded_events AS ({_EVENT_ROWS})\n"
_INSERT_EVENTS = text(_EVENT_ROWS)
NO_EVENTS = "[]"


def _other(value: object) -> str:
    # asyncpg's own UUID type (ids read back from the database) is not a uuid.UUID to orjson.
    if isinstance(value, uuid.UUID) or type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"not a JSON value of an event: {type(value).__name__}")


def encode_events(events: list[DomainEvent]) -> str:
    """The JSON array :data:`RECORD_EVENTS` reads (UUIDs and datetimes in their ISO forms)."""
    return orjson.dumps(
        [
            {
                "type": e.type,
                "resource_id": e.resource_id,
                "version": e.version,
                "occurred_at": e.occurred_at,
                "data": e.data,
                "request_id": e.origin.request_id,
                "actor": e.origin.actor,
            }
            for e in events
        ],
        default=_other,
        option=orjson.OPT_UTC_Z,  # RFC 3339 in UTC, as the API writes times
    ).decode()


class SqlAlchemyOutbox:
    """The events of one unit of work, on its session. Never commits."""

    __slots__ = ("_pending", "_session", "enabled", "recorded")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._pending: list[DomainEvent] = []
        self.recorded = False  # whether this unit of work has recorded any event
        # False only in development with LIBRARY_EVENTS_OUTBOX_ENABLED=false: events dropped.
        self.enabled = EVENTS_DROPPED not in session.info

    def record(self, *events: DomainEvent) -> None:
        if not self.enabled:
            return
        self._pending.extend(events)
        self.recorded = self.recorded or bool(events)

    def take(self) -> str:
        """The pending events as :data:`RECORD_EVENTS`'s parameter; the caller writes them."""
        if not self._pending:
            return NO_EVENTS
        events, self._pending = self._pending, []
        return encode_events(events)

    async def flush(self) -> None:
        """Write the events still pending (one statement), before the unit of work commits."""
        if self._pending:
            await self._session.execute(_INSERT_EVENTS, {"events": self.take()})
