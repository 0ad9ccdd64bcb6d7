"""The asyncpg adapter of the BookReader port: one statement per read, rows straight to read models.

The statements are built with SQLAlchemy Core (the same expressions the indexes and the plan
tests know) and compiled once per shape of query (which filters, which sort, a cursor or not);
after that a read only binds its values and sends the cached text through the read pool, where
asyncpg's per-connection statement cache prepares it once. No session, no ORM, no transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    REAL,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Text,
    Uuid,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute

from library.books.application.queries import (
    SUBSTRING_MIN_LENGTH,
    BookPageQuery,
    BookRead,
    BookSort,
    CreditRead,
    KeyedBook,
    SortValue,
)
from library.books.infrastructure.models import (
    YEAR_LAST_ASC,
    YEAR_LAST_DESC,
    BookAuthorRow,
    BookRow,
)
from shared.persistence.db import like_pattern
from shared.persistence.reads import ReadPool, Statement

# Ids leave the database as text (uuid_out in C), ready for JSON: no UUID objects to build and
# turn back into strings, and no uuid[] type for asyncpg to introspect on each new connection.
_LISTED = (
    cast(BookRow.id, Text).label("id"),
    BookRow.title,
    BookRow.isbn13,
    BookRow.publication_year,
    BookRow.language,
    BookRow.created_at,
    BookRow.updated_at,
    BookRow.version,
    cast(BookRow.credited_ids, ARRAY(Text)).label("credited_ids"),
    BookRow.credited_names,
)


_GET = Statement(select(*_LISTED).where(BookRow.id == bindparam("id", type_=Uuid)))
_HAS_BOOKS = Statement(
    select(exists().where(BookAuthorRow.author_id == bindparam("author_id", type_=Uuid)))
)


class AsyncpgBookReader:
    """Reads books on the read pool."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def get(self, book_id: uuid.UUID) -> BookRead | None:
        row = await self._pool.fetchrow(_GET.sql, book_id)
        return None if row is None else _book(row)

    async def page(self, query: BookPageQuery) -> Sequence[KeyedBook]:
        f = query.filter
        statement = _page_statement(
            query.sort,
            None if f.q is None else len(f.q.strip()) >= SUBSTRING_MIN_LENGTH,
            f.author_id is not None,
            f.language is not None,
            f.year_from is not None,
            f.year_to is not None,
            query.after is not None,
        )
        values: dict[str, Any] = {
            "q": f.q,
            "q_like": None if f.q is None else like_pattern(f.q),
            "author_id": f.author_id,
            "language": f.language,
            "year_from": f.year_from,
            "year_to": f.year_to,
            "limit": query.limit,
        }
        if query.after is not None:
            value, after_id = query.after
            values["after_value"] = _sort_bound(query.sort, value)
            values["after_id"] = after_id
        rows = await self._pool.fetch(statement.sql, *statement.args(values))
        sort = query.sort
        return [KeyedBook(_book(row), _key_value(sort, row[10])) for row in rows]

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        row = await self._pool.fetchrow(_HAS_BOOKS.sql, author_id)
        return bool(row is not None and row[0])


def _book(row: Any) -> BookRead:
    authors: list[CreditRead] = [{"id": i, "name": n} for i, n in zip(row[8], row[9], strict=True)]
    return {
        "id": row[0],
        "title": row[1],
        "authors": authors,
        "isbn13": row[2],
        "publication_year": row[3],
        "language": row[4],
        "created_at": row[5],
        "updated_at": row[6],
        "version": row[7],
    }


@lru_cache(maxsize=512)
def _page_statement(
    sort: BookSort,
    substring: bool | None,
    by_author: bool,
    by_language: bool,
    from_year: bool,
    to_year: bool,
    after: bool,
) -> Statement:
    """The statement of one shape of page query (``substring`` is None without a search)."""
    searching = substring is not None
    key = _sort_expression(sort, searching)
    stmt = select(*_LISTED, key.label("sort_key"))
    if searching:
        stmt = stmt.where(_matches(substring=bool(substring)))
    if by_author:
        stmt = stmt.where(
            BookRow.id.in_(
                select(BookAuthorRow.book_id).where(
                    BookAuthorRow.author_id == bindparam("author_id", type_=Uuid)
                )
            )
        )
    if by_language:
        stmt = stmt.where(BookRow.language == bindparam("language", type_=String))
    if from_year:
        stmt = stmt.where(BookRow.publication_year >= bindparam("year_from", type_=Integer))
    if to_year:
        stmt = stmt.where(BookRow.publication_year <= bindparam("year_to", type_=Integer))
    if after:
        bound = tuple_(key, BookRow.id)
        after_key = tuple_(_after_value(sort), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(bound < after_key if sort.descending else bound > after_key)
    if sort.descending:
        stmt = stmt.order_by(key.desc(), BookRow.id.desc())
    else:
        stmt = stmt.order_by(key.asc(), BookRow.id.asc())
    return Statement(stmt.limit(bindparam("limit", type_=Integer)))


def _search_query() -> ColumnElement[Any]:
    """The words of ``q`` as a prefix full-text query (NULL when it has no word)."""
    return func.search_query(bindparam("q", type_=Text))


def _matches(*, substring: bool) -> ColumnElement[bool]:
    """Every word of ``q`` starts a word of the title or of an author's name; or, for a query
    of SUBSTRING_MIN_LENGTH characters or more, ``q`` is inside the title. Both ignore case and
    accents, and both are served by GIN indexes (migration 0003)."""
    words = BookRow.search_document.bool_op("@@")(_search_query())
    if not substring:
        return words
    pattern = func.search_key(bindparam("q_like", type_=Text))
    inside = func.search_key(BookRow.title).like(pattern, escape="\\")
    return or_(words, inside)


def _relevance() -> ColumnElement[Any]:
    # ts_rank weighs title words (A: 1.0) above authors' names (B: 0.4); a title that only
    # contains q as a substring ranks 0. ts_rank is real, and so is the cursor's bound.
    return func.coalesce(
        func.ts_rank(BookRow.search_document, _search_query()), literal_column("0")
    )


def _sort_expression(
    sort: BookSort, searching: bool
) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
    if sort is BookSort.RELEVANCE:
        if not searching:
            raise ValueError("sorting by relevance needs a search")
        return _relevance()
    if sort.field == "title":
        return BookRow.title
    if sort.field == "created_at":
        return BookRow.created_at
    # Books without a year come last in both directions. The sentinel is rendered inline, not
    # as a bind parameter, so the expression is the indexed one even in generic plans.
    sentinel = YEAR_LAST_DESC if sort.descending else YEAR_LAST_ASC
    return func.coalesce(BookRow.publication_year, literal_column(str(sentinel)))


def _after_value(sort: BookSort) -> ColumnElement[Any]:
    if sort is BookSort.RELEVANCE:
        return cast(bindparam("after_value", type_=REAL), REAL)
    if sort.field == "title":
        return bindparam("after_value", type_=Text)
    if sort.field == "created_at":
        return bindparam("after_value", type_=DateTime(timezone=True))
    return bindparam("after_value", type_=Integer)


def _sort_bound(sort: BookSort, value: SortValue) -> Any:
    if sort.field == "publication_year" and value is None:
        return YEAR_LAST_DESC if sort.descending else YEAR_LAST_ASC
    if sort is BookSort.RELEVANCE and value is not None:
        return float(value)  # type: ignore[arg-type]
    return value


def _key_value(sort: BookSort, value: Any) -> SortValue:
    """The sort key as the cursor carries it (the year sentinels become None again)."""
    if sort.field == "publication_year" and value in (YEAR_LAST_ASC, YEAR_LAST_DESC):
        return None
    if sort is BookSort.RELEVANCE:
        return float(value)
    key: SortValue = value
    return key
