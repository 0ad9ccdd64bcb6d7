"""HTTP bodies of the change feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal[
    "author.created",
    "author.updated",
    "author.deleted",
    "book.created",
    "book.updated",
    "book.deleted",
]


class FeedStart(StrEnum):
    """Where a feed without a cursor begins: ``latest``, the end of the feed now."""

    LATEST = "latest"


class ChangeOut(BaseModel):
    """One domain event: what changed, when, and (for admins) by whom."""

    id: str = Field(description="The event's id (digits): the same event is always this id.")
    type: EventType
    resource_id: uuid.UUID = Field(description="The author's or book's id.")
    version: int = Field(
        description="The resource's version after the change (for a delete: the one deleted)."
    )
    occurred_at: datetime = Field(description="When the change was made (RFC 3339, UTC).")
    data: dict[str, Any] = Field(
        description="The changed fields, or the whole resource on create (empty on delete)."
    )
    request_id: str | None = Field(description="The X-Request-ID of the request that made it.")
    actor: str | None = Field(
        default=None,
        description=(
            "Who made it (the token's sub; null when tokens are off or for an import). Shown "
            "only to callers whose token holds catalog:admin; absent otherwise."
        ),
    )


class ChangePage(BaseModel):
    """A page of the feed, in commit order; poll again with next_cursor as cursor."""

    items: list[ChangeOut]
    next_cursor: str = Field(
        description=(
            "Never null: the position to poll from next (the same cursor when nothing is new)."
        )
    )
