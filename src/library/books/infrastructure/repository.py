"""The SQLAlchemy adapter of the BookRepository port."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    REAL,
    ColumnElement,
    Result,
    Row,
    Select,
    Text,
    Uuid,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from library.books.domain.errors import DuplicateIsbnError, UnknownAuthorsError
from library.books.domain.model import Book
from library.books.domain.repository import (
    SUBSTRING_MIN_LENGTH,
    BookFilter,
    BookListing,
    BookQuery,
    BookSort,
    SortValue,
)
from library.books.infrastructure.models import (
    YEAR_LAST_ASC,
    YEAR_LAST_DESC,
    BookAuthorRow,
    BookRow,
)
from shared.kernel.errors import ConcurrentUpdateError
from shared.persistence.db import flush, like_pattern
from shared.persistence.errors import REFERENCE_VIOLATIONS, sqlstate, violated_constraint

_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])
_ISBN_CONSTRAINT = "uq_books_isbn13"

_INSERT_BOOKS = text(
    """
    INSERT INTO books (
        id, title, isbn13, publication_year, language, external_ref, created_at, updated_at,
        credited_ids, credited_names
    )
    SELECT b.id, b.title, b.isbn13, b.publication_year, b.language, b.external_ref, b.created_at,
           b.updated_at, coalesce(c.credited_ids, '{}'), coalesce(c.credited_names, '{}')
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:titles AS text[]), CAST(:isbns AS text[]),
        CAST(:years AS integer[]), CAST(:languages AS text[]), CAST(:refs AS text[]),
        CAST(:created AS timestamptz[]), CAST(:updated AS timestamptz[])
    ) WITH ORDINALITY
        AS b(id, title, isbn13, publication_year, language, external_ref, created_at, updated_at, n)
    LEFT JOIN credit_copies(
        CAST(:book_ids AS uuid[]), CAST(:author_ids AS uuid[]), CAST(:positions AS smallint[])
    ) AS c ON c.book_id = b.id
    ORDER BY b.n  -- in the given order: of two books with one key, the first is stored
    ON CONFLICT DO NOTHING
    RETURNING id
    """
).columns(id=Uuid())
_INSERT_CREDITS = text(
    """
    INSERT INTO book_authors (book_id, author_id, position)
    SELECT * FROM unnest(
        CAST(:book_ids AS uuid[]), CAST(:author_ids AS uuid[]), CAST(:positions AS smallint[])
    )
    """
)


class SqlAlchemyBookRepository:
    """Maps Book <-> BookRow (+ its credit rows) on one session. Adds and flushes; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, book_id: uuid.UUID) -> Book | None:
        row = await self._session.get(BookRow, book_id, options=[selectinload(BookRow.credits)])
        return None if row is None else _to_domain(row)

    async def add(self, book: Book) -> None:
        row = BookRow(
            id=book.id,
            title=book.title,
            isbn13=book.isbn13,
            publication_year=book.publication_year,
            language=book.language,
            external_ref=book.external_ref,
            created_at=book.created_at,
            updated_at=book.updated_at,
            credits=[
                BookAuthorRow(author_id=author_id, position=position)
                for position, author_id in enumerate(book.author_ids)
            ],
        )
        self._session.add(row)
        await self._flush(book)
        book.version = row.version

    async def update(self, book: Book) -> None:
        row = await self._loaded_row(book)
        row.title = book.title
        row.isbn13 = book.isbn13
        row.publication_year = book.publication_year
        row.language = book.language
        row.updated_at = book.updated_at
        _replace_credits(row, book.author_ids)
        await self._flush(book)
        book.version = row.version

    async def delete(self, book: Book) -> None:
        row = await self._loaded_row(book)
        await self._session.delete(row)
        await self._flush(book)

    async def find(self, book_id: uuid.UUID) -> BookListing | None:
        # One statement: the credits and names are copied on the row (see models.BookRow).
        result = await self._read(select(*_LISTED).where(BookRow.id == book_id))
        row = result.one_or_none()
        return None if row is None else _listing(row, None)

    async def list_page(self, query: BookQuery) -> Sequence[BookListing]:
        key = _sort_expression(query.sort, query.filter.q)
        stmt = _filtered(select(*_LISTED, key.label("sort_key")), query.filter)
        if query.after is not None:
            value, after_id = query.after
            bound = tuple_(key, BookRow.id)
            after = tuple_(_sort_bound(query.sort, value), after_id)
            stmt = stmt.where(bound < after if query.sort.descending else bound > after)
        if query.sort.descending:
            stmt = stmt.order_by(key.desc(), BookRow.id.desc())
        else:
            stmt = stmt.order_by(key.asc(), BookRow.id.asc())
        result = await self._read(stmt.limit(query.limit))
        return [_listing(row, _key_value(query.sort, row.sort_key)) for row in result]

    async def _read(self, stmt: Select[*tuple[Any, ...]]) -> Result[*tuple[Any, ...]]:
        """Run a read of plain columns on the session's connection, below the ORM.

        Rows of columns need none of the ORM's work (identity map, entity loading), which
        the profile showed costing a fifth of a one-book request: SQLAlchemy Core runs them.
        """
        connection = await self._session.connection()
        return await connection.execute(stmt)

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        found = await self._session.scalar(
            select(exists().where(BookAuthorRow.author_id == author_id))
        )
        return bool(found)

    async def add_many(self, books: Sequence[Book]) -> set[uuid.UUID]:
        if not books:
            return set()
        # One statement per table whatever the batch size: the rows travel as arrays (binary in
        # asyncpg) and unnest() turns them back into rows; ON CONFLICT skips taken keys. Each
        # book goes in with its credits' copy (ids and names, from the database's
        # credit_copies()), so the credits' trigger finds it current and does not write it a
        # second time (migration 0005).
        credits = [
            (b.id, author_id, position)
            for b in books
            for position, author_id in enumerate(b.author_ids)
        ]
        inserted = await self._session.execute(
            _INSERT_BOOKS,
            {
                "ids": [b.id for b in books],
                "titles": [b.title for b in books],
                "isbns": [b.isbn13 for b in books],
                "years": [b.publication_year for b in books],
                "languages": [b.language for b in books],
                "refs": [b.external_ref for b in books],
                "created": [b.created_at for b in books],
                "updated": [b.updated_at for b in books],
                "book_ids": [c[0] for c in credits],
                "author_ids": [c[1] for c in credits],
                "positions": [c[2] for c in credits],
            },
        )
        added = set(inserted.scalars())
        credits = [c for c in credits if c[0] in added]
        if credits:
            try:
                await self._session.execute(
                    _INSERT_CREDITS,
                    {
                        "book_ids": [c[0] for c in credits],
                        "author_ids": [c[1] for c in credits],
                        "positions": [c[2] for c in credits],
                    },
                )
            except IntegrityError as exc:
                if sqlstate(exc) in REFERENCE_VIOLATIONS:
                    missing = {c[1] for c in credits}
                    raise UnknownAuthorsError(sorted(missing, key=str)) from exc
                raise
        for book in books:
            if book.id in added:
                book.version = 1
        return added

    async def known_keys(
        self, isbns: Collection[str], external_refs: Collection[str]
    ) -> tuple[set[str], set[str]]:
        if not isbns and not external_refs:
            return set(), set()
        rows = await self._session.execute(
            select(BookRow.isbn13, BookRow.external_ref).where(
                or_(
                    BookRow.isbn13 == func.any(bindparam("isbns", list(isbns), ARRAY(Text))),
                    BookRow.external_ref
                    == func.any(bindparam("refs", list(external_refs), ARRAY(Text))),
                )
            )
        )
        isbn_set, ref_set = set(isbns), set(external_refs)
        taken_isbns: set[str] = set()
        taken_refs: set[str] = set()
        for isbn13, ref in rows:
            if isbn13 in isbn_set:
                taken_isbns.add(isbn13)
            if ref in ref_set:
                taken_refs.add(ref)
        return taken_isbns, taken_refs

    async def _loaded_row(self, book: Book) -> BookRow:
        row = await self._session.get(BookRow, book.id, options=[selectinload(BookRow.credits)])
        # The entity may come from an earlier transaction: its version must still be current.
        if row is None or row.version != book.version:
            raise ConcurrentUpdateError.of("Book", book.id)
        return row

    async def _flush(self, book: Book) -> None:
        """Flush, translating what the database refused into the domain's errors."""
        try:
            await flush(self._session, kind="Book", resource_id=book.id)
        except IntegrityError as exc:
            if violated_constraint(exc) == _ISBN_CONSTRAINT and book.isbn13 is not None:
                raise DuplicateIsbnError(book.isbn13) from None
            if sqlstate(exc) in REFERENCE_VIOLATIONS:
                # An author was removed between our check and this write.
                raise UnknownAuthorsError(book.author_ids) from None
            raise


def _replace_credits(row: BookRow, author_ids: Sequence[uuid.UUID]) -> None:
    """Make ``row.credits`` list ``author_ids`` in order, reusing the rows that stay."""
    wanted = {author_id: position for position, author_id in enumerate(author_ids)}
    kept = []
    for credit in row.credits:
        if credit.author_id in wanted:
            credit.position = wanted.pop(credit.author_id)
            kept.append(credit)
    kept.extend(BookAuthorRow(author_id=a, position=p) for a, p in wanted.items())
    row.credits = sorted(kept, key=lambda credit: credit.position)


_LISTED = (
    BookRow.id,
    BookRow.title,
    BookRow.isbn13,
    BookRow.publication_year,
    BookRow.language,
    BookRow.created_at,
    BookRow.updated_at,
    BookRow.version,
    BookRow.credited_ids,
    BookRow.credited_names,
)


def _listing(row: Row[*tuple[Any, ...]], key: SortValue) -> BookListing:
    book = Book(
        id=row.id,
        title=row.title,
        author_ids=tuple(row.credited_ids),
        isbn13=row.isbn13,
        publication_year=row.publication_year,
        language=row.language,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
    return BookListing(book=book, author_names=tuple(row.credited_names), key=key)


def _search_query(q: str) -> ColumnElement[Any]:
    """The words of ``q`` as a prefix full-text query (NULL when it has no word)."""
    return func.search_query(q)


def _matches(q: str) -> ColumnElement[bool]:
    """Every word of ``q`` starts a word of the title or of an author's name; or, for a query
    of SUBSTRING_MIN_LENGTH characters or more, ``q`` is inside the title. Both ignore case and
    accents, and both are served by GIN indexes (migration 0003)."""
    words = BookRow.search_document.bool_op("@@")(_search_query(q))
    if len(q.strip()) < SUBSTRING_MIN_LENGTH:
        return words
    inside = func.search_key(BookRow.title).like(func.search_key(like_pattern(q)), escape="\\")
    return or_(words, inside)


def _relevance(q: str) -> ColumnElement[Any]:
    # ts_rank weighs title words (A: 1.0) above authors' names (B: 0.4); a title that only
    # contains q as a substring ranks 0. ts_rank is real, and so is the cursor's bound.
    return func.coalesce(func.ts_rank(BookRow.search_document, _search_query(q)), 0)


def _filtered(stmt: _Select, f: BookFilter) -> _Select:
    if f.q:
        stmt = stmt.where(_matches(f.q))
    if f.author_id is not None:
        stmt = stmt.where(
            BookRow.id.in_(
                select(BookAuthorRow.book_id).where(BookAuthorRow.author_id == f.author_id)
            )
        )
    if f.language is not None:
        stmt = stmt.where(BookRow.language == f.language)
    if f.year_from is not None:
        stmt = stmt.where(BookRow.publication_year >= f.year_from)
    if f.year_to is not None:
        stmt = stmt.where(BookRow.publication_year <= f.year_to)
    return stmt


def _sort_expression(
    sort: BookSort, q: str | None
) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
    if sort is BookSort.RELEVANCE:
        if not q:
            raise ValueError("sorting by relevance needs a search")
        return _relevance(q)
    if sort.field == "title":
        return BookRow.title
    if sort.field == "created_at":
        return BookRow.created_at
    # Books without a year come last in both directions. The sentinel is rendered inline, not
    # as a bind parameter, so the expression is the indexed one even in generic plans.
    sentinel = YEAR_LAST_DESC if sort.descending else YEAR_LAST_ASC
    return func.coalesce(BookRow.publication_year, literal_column(str(sentinel)))


def _sort_bound(sort: BookSort, value: SortValue) -> Any:
    if sort.field == "publication_year" and value is None:
        return YEAR_LAST_DESC if sort.descending else YEAR_LAST_ASC
    if sort is BookSort.RELEVANCE:
        return cast(value, REAL)
    return value


def _key_value(sort: BookSort, value: Any) -> SortValue:
    """The sort key as the cursor carries it (the year sentinels become None again)."""
    if sort.field == "publication_year" and value in (YEAR_LAST_ASC, YEAR_LAST_DESC):
        return None
    if sort is BookSort.RELEVANCE:
        return float(value)
    key: SortValue = value
    return key


def _to_domain(row: BookRow) -> Book:
    return Book(
        id=row.id,
        title=row.title,
        author_ids=tuple(credit.author_id for credit in row.credits),
        isbn13=row.isbn13,
        publication_year=row.publication_year,
        language=row.language,
        external_ref=row.external_ref,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
