"""The books use cases (writes and queries), on in-memory fakes and a fixed clock."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import pytest

from library.books.application.ports import BooksUnitOfWork
from library.books.application.queries import (
    BookFilter,
    BookQueries,
    BookRead,
    BookSort,
    CreditRead,
    ListBooks,
)
from library.books.application.services import (
    AddBook,
    AuthorRef,
    BookService,
    BookView,
    ReviseBook,
)
from library.books.domain.errors import (
    AuthorNotFoundError,
    BookNotFoundError,
    DuplicateIsbnError,
    UnknownAuthorsError,
)
from shared.kernel.errors import InvalidCursorError, RuleViolationError
from shared.kernel.idempotency import Idempotency, stored_time
from shared.kernel.pagination import encode_cursor
from tests.fakes import FakeAuthorDirectory, FakeBookReader, FakeBooksUnitOfWork, FakeClock

# A fixed id in parametrised cursors: the test ids must be the same in every xdist worker.
ANY_ID = "3f1c2b7e-5d4a-4c3b-8a29-1e0f9d8c7b6a"

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

LE_GUIN = uuid.uuid4()
BUTLER = uuid.uuid4()
LEM = uuid.uuid4()
NAMES = {LE_GUIN: "Ursula K. Le Guin", BUTLER: "Octavia E. Butler", LEM: "Stanisław Lem"}


@pytest.fixture
def uow() -> FakeBooksUnitOfWork:
    return FakeBooksUnitOfWork(names=lambda: NAMES)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(uow: FakeBooksUnitOfWork, clock: FakeClock) -> BookService:
    return BookService(
        uow=cast(BooksUnitOfWork, uow), authors=FakeAuthorDirectory(dict(NAMES)), clock=clock
    )


@pytest.fixture
def queries(uow: FakeBooksUnitOfWork) -> BookQueries:
    return BookQueries(FakeBookReader(uow), FakeAuthorDirectory(dict(NAMES)))


def credit(author_id: uuid.UUID) -> CreditRead:
    """An author as a read shows them on a book."""
    return {"id": str(author_id), "name": NAMES[author_id]}


async def add(
    service: BookService,
    title: str = "The Dispossessed",
    author_ids: Sequence[uuid.UUID] = (LE_GUIN,),
    **fields: str | int | None,
) -> BookView:
    return await service.add_book(AddBook(title=title, author_ids=list(author_ids), **fields))  # type: ignore[arg-type]


async def walk(queries: BookQueries, request: ListBooks) -> list[list[BookRead]]:
    """Every page of a list, following next_cursor as a client does."""
    pages: list[list[BookRead]] = []
    cursor = request.cursor
    while True:
        page = await queries.list_books(
            ListBooks(filter=request.filter, sort=request.sort, limit=request.limit, cursor=cursor)
        )
        pages.append(list(page.items))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- add and get --------------------------------------------------------------------------


async def test_a_repeat_with_the_same_key_gets_the_first_book_back_and_adds_none(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork, clock: FakeClock
) -> None:
    once = Idempotency(scope="POST /books", key="k1", fingerprint="f1")
    command = AddBook(
        title="Kindred", author_ids=[BUTLER, LE_GUIN], isbn="0-441-47812-3", language="eng"
    )
    first = await service.add_book(command, once)
    clock.advance(minutes=5)
    again = await service.add_book(command, once)
    assert (first.replayed, again.replayed) == (False, True)
    # The same book, as the use case gave it the first time (stored and read back).
    assert dataclasses.asdict(again.value) == dataclasses.asdict(first.value)
    assert again.value.authors == (
        AuthorRef(id=BUTLER, name=NAMES[BUTLER]),
        AuthorRef(id=LE_GUIN, name=NAMES[LE_GUIN]),
    )
    assert len(uow.store) == 1
    assert [e.type for e in uow.events] == ["book.created"]
    assert (await queries.get_book(first.value.book.id))["title"] == "Kindred"


async def test_an_added_book_is_committed_and_readable(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork
) -> None:
    view = await add(
        service,
        "  The Left Hand of Darkness ",
        [LE_GUIN],
        isbn="0-441-47812-3",
        publication_year=1969,
        language="eng",
    )
    assert uow.commits == 1
    book = await queries.get_book(view.book.id)
    assert (
        book["title"],
        book["isbn13"],
        book["publication_year"],
        book["language"],
        book["version"],
    ) == (
        "The Left Hand of Darkness",
        "9780441478125",
        1969,
        "en",
        1,
    )
    assert (book["created_at"], book["updated_at"]) == (stored_time(T0), stored_time(T0))
    assert book["authors"] == [{"id": str(LE_GUIN), "name": "Ursula K. Le Guin"}]


async def test_authors_come_back_in_credit_order_with_their_names(
    queries: BookQueries, service: BookService
) -> None:
    credits = [LEM, LE_GUIN, BUTLER]
    view = await add(service, "Anthology", credits)
    expected = tuple(AuthorRef(id=a, name=NAMES[a]) for a in credits)
    assert view.authors == expected
    assert (await queries.get_book(view.book.id))["authors"] == [credit(a) for a in credits]


@pytest.mark.parametrize(
    "command",
    [
        AddBook(title="  ", author_ids=[LE_GUIN]),
        AddBook(title="Fine", author_ids=[]),
        AddBook(title="Fine", author_ids=[LE_GUIN, LE_GUIN]),
        AddBook(title="Fine", author_ids=[LE_GUIN], isbn="978-0-306-40615-8"),
        AddBook(title="Fine", author_ids=[LE_GUIN], language="english"),
        AddBook(title="Fine", author_ids=[LE_GUIN], publication_year=T0.year + 2),
    ],
)
async def test_a_rule_violation_commits_nothing(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork, command: AddBook
) -> None:
    with pytest.raises(RuleViolationError):
        await service.add_book(command)
    assert not uow.committed
    assert (await queries.list_books(ListBooks(filter=BookFilter()))).items == []


async def test_unknown_authors_are_refused_naming_exactly_them(
    service: BookService, uow: FakeBooksUnitOfWork
) -> None:
    ghost, phantom = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(UnknownAuthorsError) as exc:
        await add(service, "Haunted", [LE_GUIN, ghost, BUTLER, phantom])
    assert set(exc.value.author_ids) == {ghost, phantom}
    assert exc.value.errors[0].loc == ("author_ids",)
    assert str(ghost) in exc.value.detail
    assert str(phantom) in exc.value.detail
    assert str(LE_GUIN) not in exc.value.detail
    assert str(BUTLER) not in exc.value.detail
    assert not uow.committed


async def test_getting_an_unknown_book_raises_not_found(
    queries: BookQueries, service: BookService
) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(BookNotFoundError) as exc:
        await queries.get_book(unknown)
    assert exc.value.book_id == unknown


async def test_a_second_book_with_the_same_isbn_is_refused(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork
) -> None:
    await add(service, "First", isbn="978-0-306-40615-7")
    with pytest.raises(DuplicateIsbnError) as exc:
        await add(service, "Second", isbn="0-306-40615-2")  # the same ISBN, as ISBN-10
    assert exc.value.isbn13 == "9780306406157"
    assert uow.commits == 1
    listed = await queries.list_books(ListBooks(filter=BookFilter()))
    assert [b["title"] for b in listed.items] == ["First"]


# --- revise and delete --------------------------------------------------------------------


async def test_a_revision_without_change_does_not_commit_nor_bump_the_version(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork, clock: FakeClock
) -> None:
    view = await add(service, "Kindred", [BUTLER], isbn="9780306406157", language="en")
    clock.advance()
    same = ReviseBook(title=" Kindred ", author_ids=[BUTLER], isbn="0-306-40615-2", language="eng")
    for command in (ReviseBook(), same):
        revised = await service.revise_book(view.book.id, command)
        assert (revised.book.version, revised.book.updated_at) == (1, T0)
    assert uow.commits == 1
    stored = await queries.get_book(view.book.id)
    assert (stored["version"], stored["updated_at"]) == (1, stored_time(T0))


async def test_a_revision_with_a_change_commits_and_bumps_the_version(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork, clock: FakeClock
) -> None:
    view = await add(service, "Kindred", [BUTLER], isbn="9780306406157", publication_year=1979)
    later = clock.advance()
    revised = await service.revise_book(
        view.book.id, ReviseBook(author_ids=[LEM, BUTLER], isbn=None)
    )
    assert uow.commits == 2
    assert (revised.book.version, revised.book.updated_at, revised.book.isbn13) == (2, later, None)
    assert revised.authors == (AuthorRef(LEM, NAMES[LEM]), AuthorRef(BUTLER, NAMES[BUTLER]))
    stored = await queries.get_book(view.book.id)
    assert (stored["title"], stored["publication_year"], stored["version"]) == ("Kindred", 1979, 2)
    assert stored["authors"] == [credit(LEM), credit(BUTLER)]


async def test_a_revision_crediting_unknown_authors_commits_nothing(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork
) -> None:
    view = await add(service, "Kindred", [BUTLER])
    ghost = uuid.uuid4()
    with pytest.raises(UnknownAuthorsError) as exc:
        await service.revise_book(view.book.id, ReviseBook(title="Changed", author_ids=[ghost]))
    assert exc.value.author_ids == [ghost]
    assert uow.commits == 1
    stored = await queries.get_book(view.book.id)
    assert (stored["title"], stored["authors"]) == ("Kindred", [credit(BUTLER)])


async def test_revising_an_unknown_book_raises_not_found(service: BookService) -> None:
    with pytest.raises(BookNotFoundError):
        await service.revise_book(uuid.uuid4(), ReviseBook(title="Nothing"))


async def test_a_deleted_book_is_gone(
    queries: BookQueries, service: BookService, uow: FakeBooksUnitOfWork
) -> None:
    view = await add(service)
    await service.delete_book(view.book.id)
    assert uow.commits == 2
    with pytest.raises(BookNotFoundError):
        await queries.get_book(view.book.id)
    with pytest.raises(BookNotFoundError):
        await service.delete_book(view.book.id)
    assert uow.commits == 2


# --- list ---------------------------------------------------------------------------------

CATALOG: list[tuple[str, int | None, list[uuid.UUID]]] = [
    ("delta", 1990, [LE_GUIN]),
    ("Alpha", None, [BUTLER]),
    ("charlie", -500, [LEM, LE_GUIN]),
    ("Bravo", 1990, [BUTLER]),
    ("alpha", 2001, [LE_GUIN]),
    ("echo", None, [LEM]),
    ("Alpha", 1850, [LE_GUIN, BUTLER]),
    ("foxtrot", 1974, [BUTLER]),
]


async def fill(service: BookService, clock: FakeClock) -> list[BookView]:
    views = []
    for i, (title, year, authors) in enumerate(CATALOG):
        if i % 3 == 0:
            clock.advance()  # some books share a creation time: ties break on id
        views.append(await add(service, title, authors, publication_year=year))
    return views


@pytest.mark.parametrize("size", [1, 2, 3, 8, 50])
@pytest.mark.parametrize("sort", [s for s in BookSort if s is not BookSort.RELEVANCE])
async def test_walking_the_pages_sees_each_book_once_in_order(
    queries: BookQueries, service: BookService, clock: FakeClock, sort: BookSort, size: int
) -> None:
    views = await fill(service, clock)
    pages = await walk(queries, ListBooks(filter=BookFilter(), sort=sort, limit=size))
    seen = [b for page in pages for b in page]
    assert sorted(b["id"] for b in seen) == sorted(str(v.book.id) for v in views)
    assert len(seen) == len(views), "a book was seen twice"
    # The pages, put together, are the one-page list: paging neither skips nor reorders.
    whole = await queries.list_books(ListBooks(filter=BookFilter(), sort=sort, limit=100))
    assert [b["id"] for b in seen] == [b["id"] for b in whole.items]
    assert len(pages) == math.ceil(len(views) / size)
    keys = [b[sort.field] for b in seen]  # type: ignore[literal-required]
    if sort.field == "publication_year":
        dated = [k for k in keys if k is not None]
        assert keys == [*dated, None, None], "books without a year come last"
        assert dated == sorted(dated, reverse=sort.descending)
    else:
        assert keys == sorted(keys, reverse=sort.descending)


async def test_every_listed_book_carries_its_authors_names(
    queries: BookQueries, service: BookService, clock: FakeClock
) -> None:
    views = {str(v.book.id): v for v in await fill(service, clock)}
    pages = await walk(queries, ListBooks(filter=BookFilter(), sort=BookSort.TITLE, limit=3))
    for book in (b for page in pages for b in page):
        assert book["authors"] == [credit(a) for a in views[book["id"]].book.author_ids]


async def test_filters_apply_across_pages(
    queries: BookQueries, service: BookService, clock: FakeClock
) -> None:
    await fill(service, clock)
    request = ListBooks(
        filter=BookFilter(year_from=1900, year_to=2000), sort=BookSort.PUBLICATION_YEAR, limit=1
    )
    seen = [b for page in await walk(queries, request) for b in page]
    assert [b["publication_year"] for b in seen] == [1974, 1990, 1990]
    assert seen[0]["title"] == "foxtrot"
    assert {b["title"] for b in seen[1:]} == {"delta", "Bravo"}


async def test_a_cursor_from_another_sort_is_refused(
    queries: BookQueries, service: BookService, clock: FakeClock
) -> None:
    await fill(service, clock)
    page = await queries.list_books(ListBooks(filter=BookFilter(), sort=BookSort.TITLE, limit=2))
    assert page.next_cursor is not None
    for other in (BookSort.TITLE_DESC, BookSort.CREATED_AT, BookSort.PUBLICATION_YEAR):
        with pytest.raises(InvalidCursorError) as exc:
            await queries.list_books(
                ListBooks(filter=BookFilter(), sort=other, limit=2, cursor=page.next_cursor)
            )
        assert exc.value.errors[0].loc == ("cursor",)


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        (BookSort.TITLE, "garbage"),
        (BookSort.TITLE, encode_cursor("authors:name", ["Alpha", ANY_ID])),
        (BookSort.TITLE, encode_cursor("books:title", [7, ANY_ID])),
        (BookSort.TITLE, encode_cursor("books:title", ["Alpha", "not-a-uuid"])),
        (BookSort.CREATED_AT, encode_cursor("books:created_at", ["yesterday", ANY_ID])),
        (
            BookSort.CREATED_AT,
            encode_cursor("books:created_at", ["2026-01-01T00:00:00", ANY_ID]),
        ),
        (
            BookSort.PUBLICATION_YEAR,
            encode_cursor("books:publication_year", ["1990", ANY_ID]),
        ),
    ],
)
async def test_a_garbage_cursor_is_refused(
    queries: BookQueries, service: BookService, clock: FakeClock, sort: BookSort, cursor: str
) -> None:
    await fill(service, clock)
    with pytest.raises(InvalidCursorError):
        await queries.list_books(ListBooks(filter=BookFilter(), sort=sort, limit=2, cursor=cursor))


async def test_year_from_after_year_to_is_refused(
    queries: BookQueries, service: BookService
) -> None:
    with pytest.raises(RuleViolationError) as exc:
        await queries.list_books(ListBooks(filter=BookFilter(year_from=2001, year_to=2000)))
    assert exc.value.errors[0].loc == ("year_to",)


async def test_a_single_year_range_is_accepted(
    queries: BookQueries, service: BookService, clock: FakeClock
) -> None:
    await fill(service, clock)
    page = await queries.list_books(ListBooks(filter=BookFilter(year_from=1990, year_to=1990)))
    assert sorted(b["title"] for b in page.items) == ["Bravo", "delta"]


async def test_an_authors_books_are_listed_page_by_page(
    queries: BookQueries, service: BookService, clock: FakeClock
) -> None:
    views = await fill(service, clock)
    pages: list[list[BookRead]] = []
    cursor: str | None = None
    while True:
        page = await queries.list_author_books(
            LEM, ListBooks(filter=BookFilter(), sort=BookSort.TITLE, limit=1, cursor=cursor)
        )
        pages.append(list(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(
        (v.book for v in views if LEM in v.book.author_ids), key=lambda b: (b.title, str(b.id))
    )
    assert [b["id"] for page in pages for b in page] == [str(b.id) for b in expected]
    assert len(pages) == 2


async def test_the_books_of_an_unknown_author_are_not_found(
    queries: BookQueries, service: BookService
) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(AuthorNotFoundError) as exc:
        await queries.list_author_books(unknown, ListBooks(filter=BookFilter()))
    assert exc.value.author_id == unknown


async def test_an_author_without_books_has_an_empty_list(
    queries: BookQueries, service: BookService
) -> None:
    await add(service, "Kindred", [BUTLER])
    page = await queries.list_author_books(LEM, ListBooks(filter=BookFilter()))
    assert (list(page.items), page.next_cursor) == ([], None)
