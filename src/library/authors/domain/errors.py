"""Errors of the authors context."""

from __future__ import annotations

import uuid

from shared.kernel.errors import ConflictError, NotFoundError


class AuthorNotFoundError(NotFoundError):
    """No author has this id."""

    code = "author-not-found"
    title = "Author not found"

    def __init__(self, author_id: uuid.UUID) -> None:
        super().__init__(f"There is no author with id {author_id}.")
        self.author_id = author_id


class AuthorHasBooksError(ConflictError):
    """The author is still credited on books, so deleting them would orphan those credits."""

    code = "author-has-books"
    title = "Author still has books"

    def __init__(self, author_id: uuid.UUID) -> None:
        super().__init__(
            f"Author {author_id} is still credited on books; delete or re-credit those books first."
        )
        self.author_id = author_id
