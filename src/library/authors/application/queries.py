"""The authors read side: the query vocabulary, flat read models, the reader port, and the
queries the API asks (CQRS: no entity, no unit of work; a row becomes JSON once)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from library.authors.domain.errors import AuthorNotFoundError
from shared.kernel.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    key_float,
    key_str,
    key_uuid,
)

# Typo tolerance needs a few letters: shorter queries match as substrings only.
TYPO_MIN_LENGTH = 3

_CURSOR_KIND = "authors:name"
_SEARCH_CURSOR_KIND = "authors:match"


@dataclass(frozen=True, slots=True)
class AuthorPageQuery:
    """A page of authors after the key ``after`` when given.

    Without ``q``: every author, by (name, id). With ``q``: the authors whose name contains
    ``q`` (case- and accent-insensitively, ``%`` and ``_`` literal) or, from TYPO_MIN_LENGTH
    characters, a word close to it (a typo), best match first: by (score descending, name,
    id); ``after_score`` is then the score of the last author of the previous page.
    """

    limit: int
    q: str | None = None
    after: tuple[str, uuid.UUID] | None = None
    after_score: float | None = None


# Read models are plain dicts (TypedDicts): made by the thousand per second, and serialised by
# orjson on its fastest path, about twice as fast as dataclasses. Treated as immutable.
class AuthorRead(TypedDict):
    """An author as the API shows them (fields in the order of the JSON document)."""

    id: str
    name: str
    birth_year: int | None
    death_year: int | None
    bio: str | None
    # RFC 3339 in UTC, as the API writes times: the read pool's wire form, sent on as it is.
    created_at: str
    updated_at: str
    version: int


@dataclass(slots=True)
class ScoredAuthor:
    """An author in a list, with how well they match the search (None without one)."""

    author: AuthorRead
    score: float | None = None


class AuthorReader(Protocol):
    """Reads authors outside any unit of work: one statement each."""

    async def get(self, author_id: uuid.UUID) -> AuthorRead | None:
        """The author with this id, or None."""
        ...

    async def page(self, query: AuthorPageQuery) -> Sequence[ScoredAuthor]:
        """Up to ``query.limit`` authors matching the query, in its order."""
        ...

    async def names(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of those of ``author_ids`` that exist."""
        ...


class AuthorQueries:
    """The authors' read use cases. Stateless: built once, shared by every request."""

    def __init__(self, reader: AuthorReader) -> None:
        self._reader = reader

    async def get_author(self, author_id: uuid.UUID) -> AuthorRead:
        """The author with this id; AuthorNotFoundError if there is none."""
        author = await self._reader.get(author_id)
        if author is None:
            raise AuthorNotFoundError(author_id)
        return author

    async def list_authors(
        self, *, q: str | None, limit: int, cursor: str | None
    ) -> Page[AuthorRead]:
        """A page of authors: all in name order, or those matching ``q``, best match first."""
        q = q or None
        after = after_score = None
        if cursor is not None and q is None:
            name, raw_id = decode_cursor(cursor, _CURSOR_KIND, 2)
            after = (key_str(name), key_uuid(raw_id))
        elif cursor is not None:
            score, name, raw_id = decode_cursor(cursor, _SEARCH_CURSOR_KIND, 3)
            after_score, after = key_float(score), (key_str(name), key_uuid(raw_id))
        query = AuthorPageQuery(limit=limit + 1, q=q, after=after, after_score=after_score)
        rows = await self._reader.page(query)
        more = len(rows) > limit
        items = rows[:limit]
        next_cursor = None
        if more:
            last = items[-1]
            key = [last.author["name"], last.author["id"]]
            next_cursor = (
                encode_cursor(_CURSOR_KIND, key)
                if q is None
                else encode_cursor(_SEARCH_CURSOR_KIND, [last.score, *key])
            )
        return Page(items=[i.author for i in items], next_cursor=next_cursor)

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of the existing authors among ``author_ids`` (other contexts ask this)."""
        ids = set(author_ids)
        if not ids:
            return {}
        return await self._reader.names(ids)
