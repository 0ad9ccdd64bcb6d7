"""Errors of the books context."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from shared.kernel.errors import ConflictError, FieldError, NotFoundError, RuleViolationError


class BookNotFoundError(NotFoundError):
    """No book has this id."""

    code = "book-not-found"
    title = "Book not found"

    def __init__(self, book_id: uuid.UUID) -> None:
        super().__init__(f"There is no book with id {book_id}.")
        self.book_id = book_id


class AuthorNotFoundError(NotFoundError):
    """A path names an author that does not exist."""

    code = "author-not-found"
    title = "Author not found"

    def __init__(self, author_id: uuid.UUID) -> None:
        super().__init__(f"There is no author with id {author_id}.")
        self.author_id = author_id


class DuplicateIsbnError(ConflictError):
    """Another book already has this ISBN; ``existing_id`` names it once it is known."""

    code = "duplicate-isbn"
    title = "ISBN already in the catalog"

    def __init__(self, isbn13: str, existing_id: uuid.UUID | None = None) -> None:
        named = "" if existing_id is None else f" (book {existing_id})"
        super().__init__(f"Another book{named} already has ISBN {isbn13}.")
        self.isbn13 = isbn13
        self.existing_id = existing_id


class UnknownAuthorsError(RuleViolationError):
    """A book credits authors that do not exist."""

    code = "unknown-authors"
    title = "Unknown authors"

    def __init__(self, author_ids: Iterable[uuid.UUID]) -> None:
        self.author_ids = sorted(set(author_ids), key=str)
        listed = ", ".join(str(a) for a in self.author_ids)
        msg = (
            f"No author has id {listed}."
            if len(self.author_ids) == 1
            else f"No authors have ids {listed}."
        )
        super().__init__(msg, errors=[FieldError(loc=("author_ids",), msg=msg)])
