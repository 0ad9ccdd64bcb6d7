"""The authors' domain events: what a consumer learns when an author changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from library.authors.domain.model import Author
from shared.kernel.events import DomainEvent, Origin, changed_fields

AUTHOR_CREATED = "author.created"
AUTHOR_UPDATED = "author.updated"
AUTHOR_DELETED = "author.deleted"


def author_fields(author: Author) -> dict[str, Any]:
    """The fields a use case may change (what an ``author.updated`` may name)."""
    return {
        "name": author.name,
        "birth_year": author.birth_year,
        "death_year": author.death_year,
        "bio": author.bio,
    }


def author_created(author: Author, origin: Origin) -> DomainEvent:
    """The whole new author, at version 1."""
    data = {
        "id": author.id,
        **author_fields(author),
        "created_at": author.created_at,
        "updated_at": author.updated_at,
        "version": author.version,
    }
    return DomainEvent(AUTHOR_CREATED, author.id, author.version, author.created_at, data, origin)


def author_updated(author: Author, before: dict[str, Any], origin: Origin) -> DomainEvent:
    """The fields that changed since ``before`` (``author_fields`` of the author then), once
    the change is written (``author.version`` is the new one)."""
    data = changed_fields(before, author_fields(author))
    data["updated_at"] = author.updated_at
    return DomainEvent(AUTHOR_UPDATED, author.id, author.version, author.updated_at, data, origin)


def author_deleted(author: Author, origin: Origin, *, now: datetime) -> DomainEvent:
    """The author is gone; ``version`` is the one deleted."""
    return DomainEvent(AUTHOR_DELETED, author.id, author.version, now, {}, origin)
