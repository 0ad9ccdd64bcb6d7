"""Domain events: what changed, when, and by whom (framework-free values).

A use case records its events on its unit of work's outbox (:class:`Outbox`); the outbox's
adapter writes them in the same transaction as the change, so a change is never committed
without its event, and no event exists without its change. The catalog's event types are the
contexts' own (``author.created``...); this module knows only their common shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change comes from: the request's id, and the token's ``sub`` (when tokens exist)."""

    request_id: str | None = None
    actor: str | None = None


# A change made outside any request (the seed, a command-line import without an actor).
NO_ORIGIN = Origin()


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One change of one resource.

    ``version`` is the resource's version after the change (for a delete, the version that was
    deleted); ``data`` the changed fields, or the whole resource on create (plain values: str,
    int, None, UUID, datetime, lists of them).
    """

    type: str
    resource_id: uuid.UUID
    version: int
    occurred_at: datetime
    data: Mapping[str, Any]
    origin: Origin = NO_ORIGIN
    # The outbox's id of the event, once written (the relay sets it; consumers dedupe by it).
    event_id: int | None = None


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``after`` whose value differs from ``before``'s."""
    return {name: value for name, value in after.items() if before.get(name) != value}


class Outbox(Protocol):
    """The events of one unit of work, written with its change (in its transaction)."""

    def record(self, *events: DomainEvent) -> None:
        """Add ``events`` to what this unit of work commits."""
        ...
