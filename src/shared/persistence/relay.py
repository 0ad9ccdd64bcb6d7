"""The outbox relay: delivers the outbox's events, in feed order, to in-process subscribers.

Each subscriber has a position (``relay_positions``). A worker takes a subscriber by a
session-level advisory lock (``pg_try_advisory_lock``: the SKIP LOCKED of this table: another
worker skips it, and a killed worker's lock dies with its connection), reads the next events
after its position that are final (the change feed's rule: below the snapshot's xmin), hands
them to the subscriber as one batch, then stores the new position. Delivery is at least once: a
worker killed after a handler ran and before the position moved delivers those events again,
so handlers are idempotent. Nothing is lost: the position moves only past handled events.

The relay wakes when a unit of work of its process commits events (the session factory's
``EVENTS_COMMITTED`` hook calls the notifier), on ``NOTIFY library_events`` (sent by a relay
after each delivered batch: other processes' writes), and polls as a fallback. It has an
engine of its own (three connections: the LISTEN, the position, a handler), off the requests'
pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson
import structlog
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Text, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from shared.kernel.events import DomainEvent, Origin
from shared.persistence.db import Base

log = structlog.get_logger("library.relay")

CHANNEL = "library_events"
_LOCK_SPACE = 0x6C6962  # "lib": the first key of every subscriber's advisory lock


class RelayPositionRow(Base):
    """A row of ``relay_positions``: the feed position a subscriber has handled up to."""

    __tablename__ = "relay_positions"

    subscriber: Mapped[str] = mapped_column(Text, primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class PrunedEventsRow(Base):
    """``events_pruned``: the last feed position retention deleted (one row; none before the
    first prune). The change feed refuses a cursor before it (410): its reader missed events."""

    __tablename__ = "events_pruned"
    __table_args__ = (CheckConstraint("singleton", name="one_row"),)

    singleton: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    xid: Mapped[int] = mapped_column(BigInteger)
    id: Mapped[int] = mapped_column(BigInteger)


Handler = Callable[[Sequence[DomainEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A named, idempotent handler of batches of events, in feed order.

    ``types``: the event types it handles (None: every type); the others are never read for
    it, and its position moves past them all the same. ``data_of``: of those, the types whose
    ``data`` it reads (None: all); the others reach it with empty ``data``. What a subscriber
    does not read is neither sent by PostgreSQL nor parsed here: the books' keeper needs a new
    book's id, not its document, and reading every document cost most of the relay's CPU."""

    name: str
    handle: Handler
    close: Callable[[], Awaitable[None]] | None = None  # at the relay's stop (a connection)
    types: frozenset[str] | None = None
    data_of: frozenset[str] | None = None


class EventNotifier:
    """Wakes whoever waits for new events: on a NOTIFY, or after ``poll_seconds`` at most."""

    def __init__(self, poll_seconds: float = 0.5) -> None:
        self._poll = poll_seconds
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self, *_: Any) -> None:
        """Wake every waiter (an asyncpg listener callback, or by hand)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seconds: float) -> None:
        """Return at the next notification, or after ``seconds`` (the poll interval at most)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout=max(0.0, min(seconds, self._poll)))
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)


_ENSURE = text(
    "INSERT INTO relay_positions (subscriber) VALUES (:name) ON CONFLICT (subscriber) DO NOTHING"
)
# The subscriber's lock (taken or not) and its position (none yet: NULL), in one round trip.
_LOCK_AND_POSITION = text(
    """
    SELECT l.locked, p.xid, p.id
    FROM (SELECT pg_try_advisory_lock(:space, :key) AS locked) AS l
    LEFT JOIN relay_positions p ON p.subscriber = :name
    """
)
# The next final events (the change feed's rule: below the snapshot's xmin) after a position,
# in feed order. Every event moves the position; only those of the subscriber's types are
# read ($4: NULL for every type), with their data only when it reads it ($5: NULL for all).
# Sent on the connection's asyncpg driver: rows as tuples, no result processing per row.
_NEXT = """
    SELECT id, xid,
           CASE WHEN wanted THEN type END,
           CASE WHEN wanted THEN resource_id END,
           CASE WHEN wanted THEN version END,
           CASE WHEN wanted THEN occurred_at END,
           CASE WHEN wanted AND ($5::text[] IS NULL OR type = ANY($5::text[]))
                THEN CAST(data AS text) END,
           CASE WHEN wanted THEN request_id END,
           CASE WHEN wanted THEN actor END
    FROM (
        SELECT *, ($4::text[] IS NULL OR type = ANY($4::text[])) AS wanted
        FROM events
        WHERE xid < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)
          AND (xid, id) > ($1, $2)
        ORDER BY xid, id
        LIMIT $3
    ) AS next
    ORDER BY xid, id
"""
_ADVANCE = text("UPDATE relay_positions SET xid = :xid, id = :id WHERE subscriber = :name")
# Retention: a small batch at a time, rows another transaction holds skipped, and never an
# event a subscriber has still to handle (its position is before it). The last position
# deleted is kept in events_pruned, in the same transaction: the feed refuses older cursors.
_PRUNE = text(
    """
    WITH deleted AS (
        DELETE FROM events WHERE id IN (
            SELECT id FROM events
            WHERE occurred_at < now() - make_interval(days => :days)
              AND NOT EXISTS (
                  SELECT 1 FROM relay_positions p WHERE (p.xid, p.id) < (events.xid, events.id)
              )
            ORDER BY occurred_at
            LIMIT :batch
            FOR UPDATE SKIP LOCKED
        )
        RETURNING xid, id
    ), moved AS (
        INSERT INTO events_pruned (singleton, xid, id)
        SELECT true, xid, id FROM deleted ORDER BY xid DESC, id DESC LIMIT 1
        ON CONFLICT (singleton) DO UPDATE SET xid = excluded.xid, id = excluded.id
        WHERE (excluded.xid, excluded.id) > (events_pruned.xid, events_pruned.id)
    )
    SELECT count(*) FROM deleted
    """
)
PRUNE_BATCH = 1000
_ANNOUNCE = text("SELECT pg_notify(:channel, '')")
_UNLOCK = text("SELECT pg_advisory_unlock(:space, :key)")


def _event(row: Any) -> DomainEvent:
    return DomainEvent(
        type=row[2],
        resource_id=uuid.UUID(bytes=row[3].bytes),
        version=row[4],
        occurred_at=row[5],
        data=_NO_DATA if row[6] is None else orjson.loads(row[6]),
        origin=Origin(request_id=row[7], actor=row[8]),
        event_id=row[0],
    )


_NO_DATA: Mapping[str, Any] = MappingProxyType({})  # the data of a type not read


def _listed(types: frozenset[str] | None) -> list[str] | None:
    return None if types is None else sorted(types)


class OutboxRelay:
    """Runs the subscribers' deliveries until stopped (``start`` / ``stop``, or ``run_once``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        subscribers: Sequence[Subscriber],
        notifier: EventNotifier,
        *,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        retention_days: int = 30,
        prune_every_seconds: float = 60.0,
        gather_seconds: float = 0.05,
    ) -> None:
        self._engine = engine
        self._subscribers = list(subscribers)
        self._notifier = notifier
        self._batch = batch_size
        self._poll = poll_seconds
        self._retention_days = retention_days
        self._prune_every = prune_every_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._gather = gather_seconds
        self._listener: AsyncConnection | None = None

    async def run_once(self) -> int:
        """One batch for every subscriber no other worker holds; how many events were handled."""
        handled = 0
        failed: Exception | None = None
        for subscriber in self._subscribers:
            try:
                handled += await self._deliver(subscriber)
            except Exception as exc:  # one subscriber's failure (a broker down) stops no other
                log.warning("relay: delivery failed", subscriber=subscriber.name, exc_info=True)
                failed = exc
        if failed is not None and not handled:
            raise failed
        return handled

    async def _deliver(self, subscriber: Subscriber) -> int:
        key = zlib.crc32(subscriber.name.encode()) & 0x7FFFFFFF
        lock = {"space": _LOCK_SPACE, "key": key}
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            locked, xid, event_id = (
                await conn.execute(_LOCK_AND_POSITION, {**lock, "name": subscriber.name})
            ).one()
            if not locked:
                return 0  # another worker is delivering to this subscriber
            try:
                if xid is None:  # its first delivery, or deleted under us (an operator replaying)
                    await conn.execute(_ENSURE, {"name": subscriber.name})
                    xid, event_id = 0, 0
                driver = (await conn.get_raw_connection()).driver_connection
                rows = await driver.fetch(  # type: ignore[union-attr]
                    _NEXT,
                    xid,
                    event_id,
                    self._batch,
                    _listed(subscriber.types),
                    _listed(subscriber.data_of),
                )
                if rows:
                    wanted = [_event(row) for row in rows if row[2] is not None]
                    if wanted:
                        await subscriber.handle(wanted)
                    # Moved once the batch is handled: a kill before redelivers the batch.
                    last = rows[-1]
                    await conn.execute(
                        _ADVANCE, {"xid": last[1], "id": last[0], "name": subscriber.name}
                    )
                return len(rows)
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute(_UNLOCK, lock)
        finally:
            await conn.close()

    async def prune(self) -> int:
        """Delete events older than the retention, one small batch per transaction (writes
        never wait for it); how many were deleted."""
        deleted = 0
        while True:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    _PRUNE, {"days": self._retention_days, "batch": PRUNE_BATCH}
                )
                count = int(result.scalar_one())
            deleted += count
            if count < PRUNE_BATCH:
                return deleted

    async def _announce(self) -> None:
        """NOTIFY the other processes (their relays and long polls) that events were delivered.

        The writes send no NOTIFY of their own: PostgreSQL serialises the commits of notifying
        transactions, through their WAL flush, which capped concurrent writes at one commit per
        flush. This short transaction, once per delivered batch, is the only one that waits."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_ANNOUNCE, {"channel": CHANNEL})

    async def _listen(self) -> None:
        try:
            self._listener = await self._engine.connect()
            raw = await self._listener.get_raw_connection()
            await raw.driver_connection.add_listener(CHANNEL, self._notifier.notify)  # type: ignore[union-attr]
        except Exception:
            log.warning("relay: LISTEN failed; polling only", exc_info=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while not self._stopping:
            try:
                if loop.time() >= next_prune:
                    next_prune = loop.time() + self._prune_every
                    await self.prune()
                handled = await self.run_once()
                if handled:
                    await self._announce()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay: a delivery failed; retrying")
                handled = 0
            if self._stopping or handled >= self._batch:
                continue  # a full batch: more are waiting
            if not handled:
                await self._notifier.wait(self._poll)
            # Let the writes committing now join the next batch: under load a delivery (seven
            # statements with the announce) then serves many writes instead of one or two
            # each. Back to back, under a steady stream of POSTs, the relay delivered about a
            # dozen events a time and sent a statement for every two writes.
            await asyncio.sleep(self._gather)

    async def start(self) -> None:
        """Listen, and deliver in a background task."""
        self._stopping = False
        await self._listen()
        self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop delivering (a handler cut short is delivered again next time) and close."""
        if self._task is not None:
            # Between two deliveries, not in the middle of one: a statement cancelled while on
            # the wire can leave its connection waiting for the server. Cancelled only if a
            # delivery does not end in time (it is then delivered again next time).
            self._stopping = True
            self._notifier.notify()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        for subscriber in self._subscribers:
            if subscriber.close is not None:
                with contextlib.suppress(Exception):
                    await subscriber.close()
        if self._listener is not None:
            # Never back to a pool with its listener: the connection is discarded.
            with contextlib.suppress(Exception):
                await self._listener.invalidate()
                await self._listener.close()
            self._listener = None
