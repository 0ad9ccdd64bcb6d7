"""The change feed's read side: pages of events after a position, and long polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.kernel.errors import GoneError, InvalidCursorError, RuleViolationError
from shared.kernel.pagination import Page, decode_cursor, encode_cursor

CURSOR_KIND = "changes"
MAX_WAIT_SECONDS = 30
_BIGINT = 2**63


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the feed: after the event ``id`` of the transaction ``xid``.

    Events are ordered by (xid, id) and shown only once every transaction that could still
    write one before them has ended (docs/events.md, "Ordering"); a position once passed is
    never filled in later.
    """

    xid: int
    id: int


START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event of the feed, ready to serialise (``document``), and its position."""

    position: Position
    document: dict[str, Any]


class CursorExpiredError(GoneError):
    """Events after the cursor were deleted by retention: its reader would miss them."""

    code = "cursor-expired"
    title = "Cursor past the retention"

    def __init__(self) -> None:
        super().__init__(
            "Events after this cursor were deleted by retention (they are kept "
            "LIBRARY_EVENTS_RETENTION_DAYS days): following it would skip them. Read the feed "
            "again from its start (no cursor), or from now on (start=latest)."
        )


class ChangeReader(Protocol):
    """Reads the outbox (one statement per call, no transaction)."""

    async def after(
        self, position: Position, limit: int, resource_id: uuid.UUID | None, *, cursor: bool
    ) -> Sequence[FeedEvent]:
        """Up to ``limit`` final events after ``position``, in feed order.

        ``cursor``: ``position`` is a reader's cursor, not the feed's start; then raise
        CursorExpiredError when an event after it was deleted by retention.
        """
        ...

    async def end(self) -> Position:
        """The position after every event final now: later events all come after it."""
        ...


class ChangeSignal(Protocol):
    """Tells a long poll when to look again."""

    async def wait(self, seconds: float) -> None:
        """Return when new events may be final, or after ``seconds`` at most."""
        ...


def encode_position(position: Position) -> str:
    """The cursor of ``position``."""
    return encode_cursor(CURSOR_KIND, [position.xid, position.id])


def decode_position(cursor: str) -> Position:
    """The position of a cursor this feed issued (InvalidCursorError otherwise)."""
    xid, event_id = decode_cursor(cursor, CURSOR_KIND, 2)
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _BIGINT for v in (xid, event_id)
    ):
        raise InvalidCursorError.on_field("cursor", "the cursor is not one this service issued")
    return Position(xid, event_id)


class ChangeFeed:
    """Pages of the change feed; ``next_cursor`` is never None (the position to poll from)."""

    def __init__(
        self,
        reader: ChangeReader,
        signal: ChangeSignal,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._signal = signal
        self._clock = clock

    async def page(
        self,
        *,
        cursor: str | None,
        limit: int,
        resource_id: uuid.UUID | None = None,
        latest: bool = False,
        wait: float = 0,
    ) -> Page[FeedEvent]:
        """The events after ``cursor`` (from the first event kept without one);
        CursorExpiredError when retention deleted events after ``cursor``.

        ``latest``: no events, and the cursor of the feed's end now (a consumer starting from
        now). ``wait`` (seconds, at most MAX_WAIT_SECONDS): when nothing is new, answer as
        soon as something is, or empty after ``wait``.
        """
        if latest:
            if cursor is not None:
                raise RuleViolationError.on_field(
                    "start", "start=latest begins a feed: send it without a cursor"
                )
            return Page(items=[], next_cursor=encode_position(await self._reader.end()))
        position = START if cursor is None else decode_position(cursor)
        deadline = self._clock() + min(wait, MAX_WAIT_SECONDS)
        while True:
            events = await self._reader.after(
                position, limit, resource_id, cursor=cursor is not None
            )
            remaining = deadline - self._clock()
            if events or remaining <= 0:
                break
            await self._signal.wait(remaining)
        if not events:
            return Page(items=[], next_cursor=cursor or encode_position(position))
        return Page(items=events, next_cursor=encode_position(events[-1].position))
