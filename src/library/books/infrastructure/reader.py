"""The asyncpg adapter of the BookReader port: one statement per read, rows straight to read models.

The statements are built with SQLAlchemy Core (the same expressions the indexes and the plan
tests know) and compiled once per shape of query (which filters, which sort, a cursor or not,
and for relevance which part of the list the cursor is in); after that a read only binds its
values and sends the cached text through the read pool, where asyncpg's per-connection
statement cache prepares it once. No session, no ORM, no transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    REAL,
    ColumnElement,
    DateTime,
    Integer,
    Select,
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
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute

from library.books.application.queries import (
    SUBSTRING_MIN_LENGTH,
    BookPageQuery,
    BookRead,
    BookSlice,
    BookSort,
    CreditRead,
    SortValue,
)
from library.books.infrastructure.models import (
    YEAR_LAST_ASC,
    YEAR_LAST_DESC,
    BookAuthorRow,
    BookRow,
)
from shared.persistence.db import contains_literally
from shared.persistence.reads import ReadPool, Statement, api_time

# Ids leave the database as text (uuid_out in C), ready for JSON: no UUID objects to build and
# turn back into strings, and no uuid[] type for asyncpg to introspect on each new connection.
_LISTED = (
    cast(BookRow.id, Text).label("id"),
    BookRow.title,
    BookRow.isbn13,
    BookRow.publication_year,
    BookRow.language,
    # Times as the API writes them, as text (shared.persistence.reads.api_time_sql).
    api_time(BookRow.created_at).label("created_at"),
    api_time(BookRow.updated_at).label("updated_at"),
    BookRow.version,
    cast(BookRow.credited_ids, ARRAY(Text)).label("credited_ids"),
    BookRow.credited_names,
)


_GET = Statement(select(*_LISTED).where(BookRow.id == bindparam("id", type_=Uuid)))
_HAS_BOOKS = Statement(
    select(exists().where(BookAuthorRow.author_id == bindparam("author_id", type_=Uuid)))
)
# Taken keys: each side an index lookup per key (uq_books_isbn13, the external_ref index).
_KNOWN_KEYS = Statement(
    select(BookRow.isbn13, BookRow.external_ref).where(
        or_(
            BookRow.isbn13 == func.any(bindparam("isbns", type_=ARRAY(Text))),
            BookRow.external_ref == func.any(bindparam("refs", type_=ARRAY(Text))),
        )
    )
)


class AsyncpgBookReader:
    """Reads books on the read pool."""

    def __init__(self, pool: ReadPool) -> None:
        self._pool = pool

    async def get(self, book_id: uuid.UUID) -> BookRead | None:
        row = await self._pool.fetchrow(_GET.sql, book_id)
        return None if row is None else _book(row)

    async def page(self, query: BookPageQuery) -> BookSlice:
        f = query.filter
        sort = query.sort
        filters = _Filters(
            f.author_id is not None,
            f.language is not None,
            f.year_from is not None,
            f.year_to is not None,
            f.isbn13 is not None,
        )
        if sort is BookSort.RELEVANCE:
            if not f.q:
                raise ValueError("sorting by relevance needs a search")
            substring = len(f.q.strip()) >= SUBSTRING_MIN_LENGTH
            # The module's constant, read here: the cached statement is keyed by its value.
            walk = _relevance_walk(query.after)
            relevance = _relevance_statement(substring, filters, walk, RANKED_MATCHES_MAX)
            if relevance is None:
                return BookSlice([], more=False)
            statement = relevance
        else:
            statement = _page_statement(
                sort,
                None if f.q is None else len(f.q.strip()) >= SUBSTRING_MIN_LENGTH,
                filters,
                query.after is not None,
            )
        values: dict[str, Any] = {
            "q": f.q,
            "author_id": f.author_id,
            "language": f.language,
            "year_from": f.year_from,
            "year_to": f.year_to,
            "isbn13": f.isbn13,
            "limit": query.limit + 1,  # one more than the page: do others follow it?
        }
        if query.after is not None:
            value, after_id = query.after
            values["after_value"] = _sort_bound(sort, value)
            values["after_id"] = after_id
        rows = await self._pool.fetch(statement.sql, *statement.args(values))
        size = query.limit
        if len(rows) <= size:
            last = rows[-1] if rows else None
            books = [_book(row) for row in rows]
            more = False
        else:
            last = rows[size - 1]
            books = [_book(row) for row in rows[:size]]
            more = True
        return BookSlice(books, more, None if last is None else _key_value(sort, last[10]))

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        row = await self._pool.fetchrow(_HAS_BOOKS.sql, author_id)
        return bool(row is not None and row[0])

    async def known_keys(
        self, isbns: Collection[str], external_refs: Collection[str]
    ) -> tuple[set[str], set[str]]:
        if not isbns and not external_refs:
            return set(), set()
        isbn_set, ref_set = set(isbns), set(external_refs)
        rows = await self._pool.fetch(
            _KNOWN_KEYS.sql, *_KNOWN_KEYS.args({"isbns": list(isbn_set), "refs": list(ref_set)})
        )
        return (
            {row[0] for row in rows if row[0] in isbn_set},
            {row[1] for row in rows if row[1] in ref_set},
        )


def _book(row: Any) -> BookRead:
    ids = row[8]
    names = row[9]
    # Equal lengths are checked once here, not by zip(strict=True): its keyword argument made
    # this function two to three times dearer (measured on a page of 50). One author is most books.
    if len(ids) != len(names):
        raise ValueError(f"book {row[0]}: {len(ids)} credited ids but {len(names)} names")
    authors: list[CreditRead]
    if len(ids) == 1:
        authors = [{"id": ids[0], "name": names[0]}]
    else:
        authors = [{"id": i, "name": n} for i, n in zip(ids, names)]  # noqa: B905
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


_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])


class _Filters(NamedTuple):
    """Which filters besides ``q`` a query has: part of its statement's shape."""

    by_author: bool
    by_language: bool
    from_year: bool
    to_year: bool
    by_isbn: bool


def _filtered(stmt: _Select, filters: _Filters) -> _Select:
    if filters.by_author:
        # The author's books first, then their order: OFFSET 0 keeps the subquery from being
        # flattened into a join the planner may walk the other way round (the sort's index,
        # probing each book for the author): for the most prolific author of 1M books (2,936)
        # that read 56k-100k buffers a page, against 14k this way; the work stays bounded by
        # the author's books, whatever the sort.
        stmt = stmt.where(
            BookRow.id.in_(
                select(BookAuthorRow.book_id)
                .where(BookAuthorRow.author_id == bindparam("author_id", type_=Uuid))
                .offset(literal_column("0"))
            )
        )
    if filters.by_language:
        stmt = stmt.where(BookRow.language == bindparam("language", type_=String))
    if filters.from_year:
        stmt = stmt.where(BookRow.publication_year >= bindparam("year_from", type_=Integer))
    if filters.to_year:
        stmt = stmt.where(BookRow.publication_year <= bindparam("year_to", type_=Integer))
    if filters.by_isbn:
        # The unique index on isbn13 finds the one book (or none) before any other condition.
        stmt = stmt.where(BookRow.isbn13 == bindparam("isbn13", type_=String))
    return stmt


def _limit() -> Any:
    return bindparam("limit", type_=Integer)


def _after_id() -> Any:
    return bindparam("after_id", type_=Uuid)


@lru_cache(maxsize=512)
def _page_statement(
    sort: BookSort, substring: bool | None, filters: _Filters, after: bool
) -> Statement:
    """The statement of one shape of page query in title, year or creation order
    (``substring`` is None without a search): the matches walked in that order.

    PostgreSQL chooses per search (it plans each with its words, migration 0006): a common
    word walks the order's index and stops after a page of matches; a rarer one finds its
    matches in the GIN indexes and sorts them.
    """
    key = _sort_expression(sort)
    # The last row's key goes into the next page's cursor; a time as text, like the others.
    shown = api_time(BookRow.created_at) if sort.field == "created_at" else key
    stmt = select(*_LISTED, shown.label("sort_key"))
    if substring is not None:
        stmt = stmt.where(_matches(substring=substring))
    stmt = _filtered(stmt, filters)
    if after:
        bound = tuple_(key, BookRow.id)
        after_key = tuple_(_after_value(sort), _after_id())
        stmt = stmt.where(bound < after_key if sort.descending else bound > after_key)
    if sort.descending:
        stmt = stmt.order_by(key.desc(), BookRow.id.desc())
    else:
        stmt = stmt.order_by(key.asc(), BookRow.id.asc())
    return Statement(stmt.limit(_limit()))


# Ranking reads every word match of a search (a heap row each, plus the GIN lookup): the first
# page counts them up to this many + 1 as it ranks them. A search with more is too broad to
# rank within the time a page may take: its word matches come in id order (docs/search.md).
RANKED_MATCHES_MAX = 2_000
# The relevance keys of the rows that are not ranked, below any ts_rank (which is >= 0; it can
# be 0, or nearly, for words matched far apart). A cursor's key says which part of the order it
# is in: >= 0 ranked word matches, -1 word matches of a search too broad to rank, -2 titles
# that only contain q.
UNRANKED_WORD_KEY = -1
INSIDE_TITLE_KEY = -2


class _Walk(Enum):
    """Where a relevance page starts: the part of the list its cursor's key is in."""

    FIRST = "first page"
    RANKED = "ranked word matches"
    UNRANKED = "unranked word matches"
    INSIDE = "titles that only contain q"


def _relevance_walk(after: tuple[SortValue, uuid.UUID] | None) -> _Walk:
    if after is None:
        return _Walk.FIRST
    value = after[0]
    if not isinstance(value, int | float):
        raise TypeError(f"a relevance key is a number, not {value!r}")
    if value > UNRANKED_WORD_KEY:
        return _Walk.RANKED
    return _Walk.UNRANKED if value == UNRANKED_WORD_KEY else _Walk.INSIDE


@lru_cache(maxsize=512)
def _relevance_statement(
    substring: bool, filters: _Filters, walk: _Walk, ranked_max: int
) -> Statement | None:
    """A page in relevance order: the word matches (ranked by ts_rank, or in id order when
    more than ``ranked_max`` books match), then the titles that only contain ``q`` (searched
    when ``substring``, a query long enough for trigrams). None when nothing can follow the
    cursor.

    One statement whose parts PostgreSQL runs in order (UNION ALL), each stopping after a page:
    the page is full before the next part starts, so a search whose words fill the page never
    reads the trigram index. Ranked or not is decided on the first page, by counting the word
    matches up to ``ranked_max`` + 1; later pages follow their cursor's part.
    """
    n = _limit()
    words = _words()
    parts: list[Select[*tuple[Any, ...]]] = []
    if walk is _Walk.FIRST:
        # Counted and ranked in one pass over the word matches, at most ranked_max + 1.
        found = _filtered(select(BookRow.id, _relevance().label("rank")), filters)
        found_cte = found.where(words).limit(literal_column(str(ranked_max + 1)))
        matches = found_cte.cte("word_matches").prefix_with("MATERIALIZED")
        counted = select(func.count()).select_from(matches).scalar_subquery()
        ranked = counted <= literal_column(str(ranked_max))
        best = (
            select(matches.c.id, matches.c.rank)
            .where(ranked)
            .order_by(matches.c.rank.desc(), matches.c.id.desc())
            .limit(n)
            .subquery("best")
        )
        parts.append(
            select(*_LISTED, best.c.rank.label("sort_key"))
            .join_from(best, BookRow, BookRow.id == best.c.id)
            .order_by(best.c.rank.desc(), best.c.id.desc())
        )
        parts.append(_unranked_words(filters).where(~ranked))
    elif walk is _Walk.RANKED:
        rank = _relevance()
        bound = tuple_(rank, BookRow.id) < tuple_(_after_value(BookSort.RELEVANCE), _after_id())
        parts.append(
            _filtered(select(*_LISTED, rank.label("sort_key")), filters)
            .where(words, bound)
            .order_by(rank.desc(), BookRow.id.desc())
            .limit(n)
        )
    elif walk is _Walk.UNRANKED:
        parts.append(_unranked_words(filters).where(BookRow.id < _after_id()))
    if substring:
        only_inside = _filtered(select(*_LISTED, _key_literal(INSIDE_TITLE_KEY)), filters)
        only_inside = only_inside.where(_inside_title(), words.is_not(True))
        if walk is _Walk.INSIDE:
            only_inside = only_inside.where(BookRow.id < _after_id())
        parts.append(only_inside.order_by(BookRow.id.desc()).limit(n))
    if not parts:
        return None
    if len(parts) == 1:
        return Statement(parts[0])
    page = union_all(*parts).subquery("page")
    return Statement(select(page).limit(n))


def _unranked_words(filters: _Filters) -> Select[*tuple[Any, ...]]:
    """The word matches in id order (descending), as relevance lists a search too broad to
    rank: PostgreSQL walks the primary key and stops after a page of matches."""
    stmt = _filtered(select(*_LISTED, _key_literal(UNRANKED_WORD_KEY)), filters)
    return stmt.where(_words()).order_by(BookRow.id.desc()).limit(_limit())


def _key_literal(key: int) -> ColumnElement[Any]:
    return cast(literal_column(str(key)), REAL).label("sort_key")


def _search_query() -> ColumnElement[Any]:
    """The words of ``q`` as a prefix full-text query (NULL when it has no word).

    Always folded into a constant at planning: migration 0006 makes sure searches are planned
    with their values (a generic plan would run it on every row). One parameter, ``q``, however
    many times a statement uses it.
    """
    return func.search_query(bindparam("q", type_=Text))


def _words() -> ColumnElement[bool]:
    """Every word of ``q`` starts a word of the title or of an author's name (GIN index)."""
    return BookRow.search_document.bool_op("@@")(_search_query())


def _inside_title() -> ColumnElement[bool]:
    """``q`` is inside the title, literally (trigram GIN index; only for a query of
    SUBSTRING_MIN_LENGTH characters or more, which trigrams can serve)."""
    return contains_literally(BookRow.title, bindparam("q", type_=Text))


def _matches(*, substring: bool) -> ColumnElement[bool]:
    """Every word of ``q`` starts a word of the title or of an author's name; or, for a query
    of SUBSTRING_MIN_LENGTH characters or more, ``q`` is inside the title. Both ignore case and
    accents, and both are served by GIN indexes (migration 0003)."""
    words = _words()
    return or_(words, _inside_title()) if substring else words


def _relevance() -> ColumnElement[Any]:
    # ts_rank weighs title words (A: 1.0) above authors' names (B: 0.4); it is real, and so is
    # the cursor's bound.
    return func.ts_rank(BookRow.search_document, _search_query())


def _sort_expression(sort: BookSort) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
    if sort is BookSort.RELEVANCE:
        raise ValueError("relevance has a statement of its own")
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
    if sort.field == "created_at" and isinstance(value, str):
        return datetime.fromisoformat(value)  # a key as this reader gives it (API text)
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
