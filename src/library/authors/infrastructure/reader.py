"""The asyncpg adapter of the AuthorReader port: one statement per read, on the read pool.

Statements are SQLAlchemy Core, compiled once per shape (a search or not, long enough for
typo tolerance or not, a cursor or not); no session, no ORM entity, no transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    REAL,
    Integer,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY

from library.authors.application.queries import (
    TYPO_MIN_LENGTH,
    AuthorPageQuery,
    AuthorRead,
    ScoredAuthor,
)
from library.authors.infrastructure.models import AuthorRow
from shared.persistence.db import contains_literally
from shared.persistence.reads import ReadPool, Statement, api_time

_COLUMNS = (
    cast(AuthorRow.id, Text).label("id"),  # text, ready for JSON
    AuthorRow.name,
    AuthorRow.birth_year,
    AuthorRow.death_year,
    AuthorRow.bio,
    api_time(AuthorRow.created_at).label("created_at"),  # as the API writes times, as text
    api_time(AuthorRow.updated_at).label("updated_at"),
    AuthorRow.version,
)
_GET = Statement(select(*_COLUMNS).where(AuthorRow.id == bindparam("id", type_=Uuid)))
_NAMES = Statement(
    select(AuthorRow.id, AuthorRow.name).where(
        AuthorRow.id == func.any(bindparam("ids", type_=ARRAY(Uuid)))
    )
)


class AsyncpgAuthorReader:
    """Reads authors on the read pool."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def get(self, author_id: uuid.UUID) -> AuthorRead | None:
        row = await self._pool.fetchrow(_GET.sql, author_id)
        return None if row is None else _author(row)

    async def page(self, query: AuthorPageQuery) -> Sequence[ScoredAuthor]:
        q = query.q
        statement = _page_statement(
            None if not q else len(q.strip()) >= TYPO_MIN_LENGTH, query.after is not None
        )
        values: dict[str, Any] = {"q": q}
        values["limit"] = query.limit
        if query.after is not None:
            values["after_name"], values["after_id"] = query.after
            values["after_score"] = query.after_score or 0.0
        rows = await self._pool.fetch(statement.sql, *statement.args(values))
        if not q:
            return [ScoredAuthor(_author(row)) for row in rows]
        return [ScoredAuthor(_author(row), float(row[8])) for row in rows]

    async def names(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(author_ids)
        if not ids:
            return {}
        rows = await self._pool.fetch(_NAMES.sql, ids)
        return {uuid.UUID(bytes=row[0].bytes): row[1] for row in rows}


def _author(row: Any) -> AuthorRead:
    return {
        "id": row[0],
        "name": row[1],
        "birth_year": row[2],
        "death_year": row[3],
        "bio": row[4],
        "created_at": row[5],
        "updated_at": row[6],
        "version": row[7],
    }


@lru_cache(maxsize=16)
def _page_statement(typos: bool | None, after: bool) -> Statement:
    """The statement of one shape of page query (``typos`` is None without a search)."""
    key = tuple_(AuthorRow.name, AuthorRow.id)
    after_key = tuple_(bindparam("after_name", type_=Text), bindparam("after_id", type_=Uuid))
    limit = bindparam("limit", type_=Integer)
    if typos is None:
        stmt = select(*_COLUMNS)
        if after:
            stmt = stmt.where(key > after_key)
        return Statement(stmt.order_by(AuthorRow.name, AuthorRow.id).limit(limit))
    # Names containing q, or (from TYPO_MIN_LENGTH characters) a word close to it. Both sides
    # go through search_key (lower + unaccent) and a trigram GIN index serves both tests; `<%`
    # is word_similarity >= pg_trgm.word_similarity_threshold, which every connection sets
    # (Settings.search_typo_threshold).
    name_key = func.search_key(AuthorRow.name)
    q_key = func.search_key(bindparam("q", type_=Text))
    score = func.word_similarity(q_key, name_key)
    match = contains_literally(AuthorRow.name, bindparam("q", type_=Text))
    if typos:
        match = or_(match, q_key.bool_op("<%")(name_key))
    searched = select(*_COLUMNS, score.label("score")).where(match)
    if after:
        bound = cast(bindparam("after_score", type_=REAL), REAL)
        searched = searched.where(or_(score < bound, and_(score == bound, key > after_key)))
    searched = searched.order_by(score.desc(), AuthorRow.name, AuthorRow.id).limit(limit)
    return Statement(searched)
