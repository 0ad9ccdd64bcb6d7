"""The bulk import use case on fakes, wired to the authors' real registry as in production."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import UTC, datetime
from typing import cast

import pytest

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.queries import AuthorQueries
from library.authors.application.registry import AuthorNameRegistry
from library.authors.domain.model import Author
from library.authors.public import AuthorsFacade
from library.books.application.ports import BooksUnitOfWork
from library.books.interchange.goodbooks import SourceRow
from library.books.interchange.importer import BookDraft, BookImporter, ImportStatus
from library.books.interchange.runner import Report, run_import
from library.bootstrap.adapters import AuthorDirectoryAdapter
from tests.fakes import (
    FakeAuthorReader,
    FakeAuthorsUnitOfWork,
    FakeBookReader,
    FakeBooksUnitOfWork,
    FakeClock,
)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def authors_uow() -> FakeAuthorsUnitOfWork:
    return FakeAuthorsUnitOfWork()


@pytest.fixture
def books_uow() -> FakeBooksUnitOfWork:
    return FakeBooksUnitOfWork()


@pytest.fixture
def importer(authors_uow: FakeAuthorsUnitOfWork, books_uow: FakeBooksUnitOfWork) -> BookImporter:
    clock = FakeClock(T0)
    uow = cast(AuthorsUnitOfWork, authors_uow)
    facade = AuthorsFacade(
        AuthorQueries(FakeAuthorReader(authors_uow)),
        lambda: AuthorNameRegistry(uow, clock=clock),
    )
    return BookImporter(
        uow=cast(BooksUnitOfWork, books_uow),
        authors=AuthorDirectoryAdapter(facade),
        reader=FakeBookReader(books_uow),
        clock=clock,
    )


def draft(ref: int, title: str = "A Book", *names: str, isbn: str | None = None) -> BookDraft:
    return BookDraft(
        title=title,
        author_names=names or ("Ann Author",),
        external_ref=f"goodbooks:{ref}",
        isbn=isbn,
    )


def author_names(uow: FakeAuthorsUnitOfWork) -> list[str]:
    return sorted(a.name for a in uow.store.values())


async def test_books_are_imported_with_their_authors_in_credit_order(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    result = await importer.import_batch(
        [draft(1, "Harry Potter", "J.K. Rowling", "Mary GrandPré", isbn="0439554934")],
        dry_run=False,
    )
    assert [o.status for o in result.outcomes] == [ImportStatus.IMPORTED]
    book = books_uow.store[result.outcomes[0].book_id]  # type: ignore[index]
    names = {a.id: a.name for a in authors_uow.store.values()}
    assert [names[a] for a in book.author_ids] == ["J.K. Rowling", "Mary GrandPré"]
    assert book.isbn13 == "9780439554930"
    assert book.external_ref == "goodbooks:1"
    assert result.authors_registered == {"J.K. Rowling", "Mary GrandPré"}


async def test_a_second_run_imports_nothing_and_registers_no_author(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    batch = [draft(1, "With ISBN", "Ann", isbn="0439554934"), draft(2, "Without ISBN", "Ann")]
    await importer.import_batch(batch, dry_run=False)
    again = await importer.import_batch(batch, dry_run=False)
    assert [o.status for o in again.outcomes] == [ImportStatus.PRESENT, ImportStatus.PRESENT]
    assert again.authors_registered == frozenset()
    assert len(books_uow.store) == 2
    assert author_names(authors_uow) == ["Ann"]


async def test_a_book_already_in_the_catalog_by_isbn_is_present_even_under_another_ref(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork
) -> None:
    await importer.import_batch([draft(1, isbn="0439554934")], dry_run=False)
    result = await importer.import_batch([draft(99, isbn="978-0-439-55493-0")], dry_run=False)
    assert result.outcomes[0].status is ImportStatus.PRESENT
    assert len(books_uow.store) == 1


async def test_the_second_of_two_rows_with_one_isbn_is_present(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork
) -> None:
    result = await importer.import_batch(
        [draft(1, "First", isbn="0439554934"), draft(2, "Second", isbn="0439554934")],
        dry_run=False,
    )
    assert [o.status for o in result.outcomes] == [ImportStatus.IMPORTED, ImportStatus.PRESENT]
    assert [b.title for b in books_uow.store.values()] == ["First"]


async def test_one_person_is_one_author_across_books_and_spellings(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    nfd = unicodedata.normalize("NFD", "Mary GrandPré")
    await importer.import_batch([draft(1, "One", "Mary GrandPré")], dry_run=False)
    await importer.import_batch(
        [draft(2, "Two", nfd), draft(3, "Three", "Mary GrandPré", nfd)], dry_run=False
    )
    assert author_names(authors_uow) == ["Mary GrandPré"]
    (author,) = authors_uow.store
    assert all(b.author_ids == (author,) for b in books_uow.store.values())


async def test_an_existing_author_of_the_same_name_is_reused(
    importer: BookImporter, authors_uow: FakeAuthorsUnitOfWork, books_uow: FakeBooksUnitOfWork
) -> None:
    await importer.import_batch([draft(1, "One", "Ursula K. Le Guin")], dry_run=False)
    (existing,) = authors_uow.store
    result = await importer.import_batch([draft(2, "Two", "Ursula K. Le Guin")], dry_run=False)
    assert result.authors_registered == frozenset()
    assert books_uow.store[result.outcomes[0].book_id].author_ids == (existing,)  # type: ignore[index]


async def test_a_book_breaking_a_rule_is_rejected_and_registers_no_author(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    result = await importer.import_batch(
        [draft(1, "   ", "Nobody Else"), draft(2, "Fine", "Ann")], dry_run=False
    )
    rejected, imported = result.outcomes
    assert rejected.status is ImportStatus.REJECTED
    assert rejected.reason == "title must not be empty"
    assert imported.status is ImportStatus.IMPORTED
    assert author_names(authors_uow) == ["Ann"]


async def test_a_book_with_an_unacceptable_author_name_is_rejected(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork
) -> None:
    result = await importer.import_batch([draft(1, "T", "x" * 301)], dry_run=False)
    assert result.outcomes[0].status is ImportStatus.REJECTED
    assert "at most 300 characters" in (result.outcomes[0].reason or "")
    assert books_uow.store == {}


async def test_a_book_without_authors_is_rejected(importer: BookImporter) -> None:
    result = await importer.import_batch(
        [BookDraft(title="T", author_names=(), external_ref="goodbooks:1")], dry_run=False
    )
    assert result.outcomes[0].status is ImportStatus.REJECTED
    assert "between 1 and 50 authors" in (result.outcomes[0].reason or "")


async def test_a_dry_run_predicts_the_outcomes_and_writes_nothing(
    importer: BookImporter, books_uow: FakeBooksUnitOfWork, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    await importer.import_batch([draft(1, "Old", "Ann", isbn="0439554934")], dry_run=False)
    before_books, before_authors = dict(books_uow.store), dict(authors_uow.store)
    result = await importer.import_batch(
        [
            draft(1, "Old", "Ann", isbn="0439554934"),
            draft(2, "New", "Bob"),
            draft(3, "Twin", "Bob", isbn="0306406152"),
            draft(4, "Twin again", "Bob", isbn="0306406152"),
            draft(5, ""),
        ],
        dry_run=True,
    )
    assert [o.status for o in result.outcomes] == [
        ImportStatus.PRESENT,
        ImportStatus.IMPORTED,
        ImportStatus.IMPORTED,
        ImportStatus.PRESENT,
        ImportStatus.REJECTED,
    ]
    assert result.authors_registered == {"Bob"}  # would be registered
    assert books_uow.store == before_books
    assert authors_uow.store == before_authors
    assert books_uow.commits == 1  # the first, real import only


async def test_bulk_registration_takes_the_registry_lock(
    importer: BookImporter, authors_uow: FakeAuthorsUnitOfWork
) -> None:
    await importer.import_batch([draft(1)], dry_run=False)
    assert authors_uow.authors.locked


# --- the runner: counts and report ---------------------------------------------------------------


def row(
    number: int, d: BookDraft | None, rejection: str | None = None, *warnings: str
) -> SourceRow:
    return SourceRow(
        number=number,
        line=number + 1,
        raw=f"raw {number}",
        draft=d,
        rejection=rejection,
        warnings=warnings,
    )


async def test_every_row_is_counted_once_and_problems_go_to_the_report(
    importer: BookImporter,
) -> None:
    rows = [
        row(1, draft(1, "A"), None, "isbn dropped"),
        row(2, None, "expected 23 fields, found 3"),
        row(3, draft(3, "   ")),
        row(4, draft(4, "D")),
        row(5, draft(1, "A again"), None, "year dropped"),  # same external ref as row 1
    ]
    stream = io.StringIO()
    seen: list[int] = []
    summary = await run_import(
        rows, importer, Report(stream), batch_size=2, on_batch=lambda s: seen.append(s.rows)
    )
    assert (summary.rows, summary.imported, summary.present, summary.rejected) == (5, 2, 1, 2)
    assert summary.consistent
    assert summary.warned == 2
    assert seen == [2, 4, 5]  # progress after each committed batch
    lines = stream.getvalue().splitlines()
    assert lines[0] == "row,line,status,problem,reason,raw"
    assert lines[1:] == [
        "1,2,imported,warning,isbn dropped,raw 1",
        '2,3,rejected,rejected,"expected 23 fields, found 3",raw 2',
        "3,4,rejected,rejected,title must not be empty,raw 3",
        "5,6,present,warning,year dropped,raw 5",
    ]


async def test_an_author_registry_lookup_prefers_the_earliest_registered_namesake(
    authors_uow: FakeAuthorsUnitOfWork,
) -> None:
    older = Author.register(name="Jo Smith", birth_year=None, death_year=None, bio=None, now=T0)
    newer = Author.register(
        name="Jo Smith", birth_year=1990, death_year=None, bio=None, now=T0.replace(hour=10)
    )
    authors_uow.store = {newer.id: newer, older.id: older}
    registry = AuthorNameRegistry(cast(AuthorsUnitOfWork, authors_uow), clock=FakeClock(T0))
    found = await registry.resolve(["Jo Smith", " Jo Smith "], register_missing=True)
    assert found.ids == {"Jo Smith": older.id, " Jo Smith ": older.id}
    assert found.registered == frozenset()
    assert len(authors_uow.store) == 2


async def test_a_dry_run_counts_an_author_to_register_once_across_batches(
    importer: BookImporter,
) -> None:
    rows = [row(n, draft(n, f"Book {n}", "Bob", f"Ann {n % 2}")) for n in range(1, 6)]
    summary = await run_import(rows, importer, Report(io.StringIO()), batch_size=2, dry_run=True)
    assert (summary.imported, summary.authors_registered) == (5, 3)


@pytest.mark.parametrize("formula", ["=1+2", "+SUM(A1)", "-2+3", "@HYPERLINK(x)", "\t=1", "\r=1"])
def test_no_report_cell_runs_as_a_spreadsheet_formula(formula: str) -> None:
    """A cell that starts like a formula (OWASP CSV injection) is written with a leading
    apostrophe, which spreadsheets show as text; the rest of the cell is kept as it was."""
    stream = io.StringIO()
    hostile = SourceRow(number=1, line=2, raw=formula, draft=None, rejection=formula, warnings=())
    Report(stream).add(hostile, ImportStatus.REJECTED, "rejected", formula)
    cells = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))[1]
    assert cells[4:] == [f"'{formula}", f"'{formula}"]
