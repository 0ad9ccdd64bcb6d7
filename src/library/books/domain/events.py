"""The books' domain events: what a consumer learns when a book changes.

A book's data names its authors by id (``author_ids``, in credit order); their names are the
authors context's, announced by its own events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from library.books.domain.model import Book
from shared.kernel.events import DomainEvent, Origin, changed_fields

BOOK_CREATED = "book.created"
BOOK_UPDATED = "book.updated"
BOOK_DELETED = "book.deleted"


def book_fields(book: Book) -> dict[str, Any]:
    """The fields a use case may change (what a ``book.updated`` may name)."""
    return {
        "title": book.title,
        "author_ids": list(book.author_ids),
        "isbn": book.isbn13,
        "publication_year": book.publication_year,
        "language": book.language,
    }


def book_created(book: Book, origin: Origin) -> DomainEvent:
    """The whole new book, at version 1 (recorded before the write: a new book is at 1)."""
    data = {
        "id": book.id,
        **book_fields(book),
        "external_ref": book.external_ref,
        "created_at": book.created_at,
        "updated_at": book.updated_at,
        "version": book.version,
    }
    return DomainEvent(BOOK_CREATED, book.id, book.version, book.created_at, data, origin)


def book_updated(book: Book, before: dict[str, Any], origin: Origin) -> DomainEvent:
    """The fields that changed since ``before`` (``book_fields`` of the book then), once the
    change is written (``book.version`` is the new one)."""
    data = changed_fields(before, book_fields(book))
    data["updated_at"] = book.updated_at
    return DomainEvent(BOOK_UPDATED, book.id, book.version, book.updated_at, data, origin)


def book_deleted(book: Book, origin: Origin, *, now: datetime) -> DomainEvent:
    """The book is gone; ``version`` is the one deleted."""
    return DomainEvent(BOOK_DELETED, book.id, book.version, now, {}, origin)
