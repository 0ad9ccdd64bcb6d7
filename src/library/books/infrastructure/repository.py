"""The SQLAlchemy adapter of the BookRepository port."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import (
    Select,
    Uuid,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from library.books.domain.errors import DuplicateIsbnError, UnknownAuthorsError
from library.books.domain.model import Book
from library.books.infrastructure.models import (
    BookAuthorRow,
    BookRow,
)
from shared.kernel.errors import ConcurrentUpdateError
from shared.persistence.db import flush
from shared.persistence.driver import TransactionDriver
from shared.persistence.errors import REFERENCE_VIOLATIONS, sqlstate, violated_constraint
from shared.persistence.outbox import RECORD_EVENTS, SqlAlchemyOutbox
from shared.persistence.reads import Statement

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
_INSERT_ONE_BOOK = """
    INSERT INTO books (
        id, title, isbn13, publication_year, language, external_ref, created_at, updated_at,
        credited_ids, credited_names
    )
    SELECT CAST(:id AS uuid), CAST(:title AS text), CAST(:isbn13 AS text),
           CAST(:publication_year AS integer), CAST(:language AS text),
           CAST(:external_ref AS text), CAST(:created_at AS timestamptz),
           CAST(:updated_at AS timestamptz),
           coalesce(c.credited_ids, '{}'), coalesce(c.credited_names, '{}')
    FROM (VALUES (1)) AS one(n)
    LEFT JOIN credit_copies(
        CAST(:book_ids AS uuid[]), CAST(:author_ids AS uuid[]), CAST(:positions AS smallint[])
    ) AS c ON true
    RETURNING version, credited_names
"""
_CREDIT_ROWS = """
    INSERT INTO book_authors (book_id, author_id, position)
    SELECT * FROM unnest(
        CAST(:book_ids AS uuid[]), CAST(:author_ids AS uuid[]), CAST(:positions AS smallint[])
    )
"""
_INSERT_CREDITS = text(_CREDIT_ROWS)
# A new book is one statement: the pending events (book.created) and the credits go in with
# it, as data-modifying CTEs. The credits' foreign key to the book and their trigger run at
# the end of the statement, when the book is there. (Constants joined: no value is formatted
# into the SQL.)
_INSERT_BOOK = text(RECORD_EVENTS + f", written_credits AS ({_CREDIT_ROWS})\n" + _INSERT_ONE_BOOK)
# The same without the events' CTE: for an outbox that records nothing (development only).
_INSERT_BOOK_ALONE = text(f"WITH written_credits AS ({_CREDIT_ROWS})\n" + _INSERT_ONE_BOOK)


# The two as asyncpg takes them ($n parameters), compiled once.
_COMPILED = {s: Statement(s) for s in (_INSERT_BOOK, _INSERT_BOOK_ALONE)}


class SqlAlchemyBookRepository:
    """Maps Book <-> BookRow (+ its credit rows) on one session. Adds and flushes; never commits."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: SqlAlchemyOutbox,
        driver: TransactionDriver,
    ) -> None:
        self._session = session
        # The unit of work's outbox: a book's INSERT writes the events pending on it.
        self._outbox = outbox
        # The unit of work's transaction on asyncpg itself: a book's INSERT is driver SQL.
        self._driver = driver
        self._names: dict[uuid.UUID, tuple[str, ...]] = {}

    async def get(self, book_id: uuid.UUID) -> Book | None:
        row = await self._session.get(BookRow, book_id, options=[selectinload(BookRow.credits)])
        return None if row is None else _to_domain(row)

    async def holder_of_isbn(self, isbn13: str) -> uuid.UUID | None:
        found = await self._session.execute(select(BookRow.id).where(BookRow.isbn13 == isbn13))
        return found.scalar_one_or_none()

    async def add(self, book: Book) -> None:
        # One statement, no ORM flush: the book with its credits' copy (credit_copies,
        # migration 0005: written once, its authors' names returned), its credits, its events.
        values: dict[str, object] = {
            "id": book.id,
            "title": book.title,
            "isbn13": book.isbn13,
            "publication_year": book.publication_year,
            "language": book.language,
            "external_ref": book.external_ref,
            "created_at": book.created_at,
            "updated_at": book.updated_at,
            "book_ids": [book.id] * len(book.author_ids),
            "author_ids": list(book.author_ids),
            "positions": list(range(len(book.author_ids))),
        }
        statement = _INSERT_BOOK_ALONE
        if self._outbox.enabled:
            statement, values["events"] = _INSERT_BOOK, self._outbox.take()
        compiled = _COMPILED[statement]
        try:
            # On asyncpg itself, compiled once (shared.persistence.driver): no greenlet, no
            # execution context, no bind processing per POST.
            row: Any = await self._driver.fetchrow(compiled, values)
            version, names = row
        except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            _refused(exc, book)
            raise
        book.version = version
        self._names[book.id] = tuple(names)

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

    async def credited_names(self, book_id: uuid.UUID) -> tuple[str, ...]:
        if book_id in self._names:  # returned by the insert that wrote them
            return self._names[book_id]
        # Kept by the database's triggers as the credits are written (migration 0003).
        names = await self._session.scalar(
            select(BookRow.credited_names).where(BookRow.id == book_id)
        )
        return tuple(names or ())

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
            _refused(exc, book)
            raise


def _refused(exc: IntegrityError | asyncpg.PostgresError, book: Book) -> None:
    """The domain's error for what the database refused of ``book`` (returns if none fits)."""
    if violated_constraint(exc) == _ISBN_CONSTRAINT and book.isbn13 is not None:
        raise DuplicateIsbnError(book.isbn13) from None
    if sqlstate(exc) in REFERENCE_VIOLATIONS:
        # An author that does not exist (or was removed meanwhile): the foreign key says so.
        raise UnknownAuthorsError(book.author_ids) from None


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
