"""The authors use cases (writes and queries), on in-memory fakes and a fixed clock."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime
from typing import cast

import pytest

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.queries import AuthorQueries, AuthorRead
from library.authors.application.services import AuthorService, RegisterAuthor, ReviseAuthor
from library.authors.domain.errors import AuthorHasBooksError, AuthorNotFoundError
from library.authors.domain.model import Author
from shared.kernel.errors import (
    IdempotencyKeyReusedError,
    InvalidCursorError,
    RuleViolationError,
)
from shared.kernel.idempotency import Idempotency, stored_time
from shared.kernel.pagination import encode_cursor
from tests.fakes import FakeAuthorReader, FakeAuthorsUnitOfWork, FakeBookCatalog, FakeClock

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def uow() -> FakeAuthorsUnitOfWork:
    return FakeAuthorsUnitOfWork()


@pytest.fixture
def catalog() -> FakeBookCatalog:
    return FakeBookCatalog()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(
    uow: FakeAuthorsUnitOfWork, catalog: FakeBookCatalog, clock: FakeClock
) -> AuthorService:
    return AuthorService(uow=cast(AuthorsUnitOfWork, uow), books=catalog, clock=clock)


@pytest.fixture
def queries(uow: FakeAuthorsUnitOfWork) -> AuthorQueries:
    return AuthorQueries(FakeAuthorReader(uow))


async def register(
    service: AuthorService, name: str = "Ursula K. Le Guin", **fields: int | str
) -> Author:
    return await service.register_author(RegisterAuthor(name=name, **fields))  # type: ignore[arg-type]


async def walk(queries: AuthorQueries, limit: int, q: str | None = None) -> list[list[AuthorRead]]:
    """Every page of the list, following next_cursor as a client does."""
    pages: list[list[AuthorRead]] = []
    cursor: str | None = None
    while True:
        page = await queries.list_authors(q=q, limit=limit, cursor=cursor)
        pages.append(list(page.items))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- register and get ---------------------------------------------------------------------


async def test_a_registered_author_is_committed_and_readable(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    author = await register(
        service, "  Ursula K. Le Guin ", birth_year=1929, death_year=2018, bio="Earthsea"
    )
    assert uow.commits == 1
    found = await queries.get_author(author.id)
    assert (found["name"], found["birth_year"], found["death_year"], found["bio"]) == (
        "Ursula K. Le Guin",
        1929,
        2018,
        "Earthsea",
    )
    assert (found["version"], found["created_at"], found["updated_at"]) == (
        1,
        stored_time(T0),
        stored_time(T0),
    )


@pytest.mark.parametrize(
    "command",
    [
        RegisterAuthor(name="   "),
        RegisterAuthor(name="x" * 301),
        RegisterAuthor(name="Fine", birth_year=1950, death_year=1949),
        RegisterAuthor(name="Fine", birth_year=T0.year + 1),
        RegisterAuthor(name="Fine", bio="b" * 10_001),
    ],
)
async def test_a_rule_violation_commits_nothing(
    queries: AuthorQueries,
    service: AuthorService,
    uow: FakeAuthorsUnitOfWork,
    command: RegisterAuthor,
) -> None:
    with pytest.raises(RuleViolationError):
        await service.register_author(command)
    assert not uow.committed
    assert (await queries.list_authors(q=None, limit=10, cursor=None)).items == []


async def test_getting_an_unknown_author_raises_not_found(
    queries: AuthorQueries, service: AuthorService
) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(AuthorNotFoundError) as exc:
        await queries.get_author(unknown)
    assert exc.value.author_id == unknown


async def test_a_repeat_with_the_same_key_gets_the_first_author_back_and_registers_none(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork, clock: FakeClock
) -> None:
    once = Idempotency(scope="POST /authors", key="k1", fingerprint="f1")
    command = RegisterAuthor(name="Octavia E. Butler", birth_year=1947, death_year=2006)
    first = await service.register_author(command, once)
    clock.advance(minutes=5)
    again = await service.register_author(command, once)
    assert (first.replayed, again.replayed) == (False, True)
    # The same author, as the use case gave them the first time (stored and read back).
    assert dataclasses.asdict(again.value) == dataclasses.asdict(first.value)
    assert again.value.created_at == T0
    assert len(uow.store) == 1
    assert [e.type for e in uow.events] == ["author.created"]


async def test_the_same_key_for_another_author_is_refused_and_registers_nothing(
    service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    await service.register_author(
        RegisterAuthor(name="A"), Idempotency(scope="POST /authors", key="k1", fingerprint="f1")
    )
    with pytest.raises(IdempotencyKeyReusedError):
        await service.register_author(
            RegisterAuthor(name="B"),
            Idempotency(scope="POST /authors", key="k1", fingerprint="f2"),
        )
    assert [a.name for a in uow.store.values()] == ["A"]


# --- revise -------------------------------------------------------------------------------


async def test_a_revision_without_change_does_not_commit_nor_bump_the_version(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork, clock: FakeClock
) -> None:
    author = await register(service, "Octavia E. Butler", birth_year=1947, bio="Kindred")
    clock.advance()
    for command in (ReviseAuthor(), ReviseAuthor(name=" Octavia E. Butler ", birth_year=1947)):
        revised = await service.revise_author(author.id, command)
        assert (revised.version, revised.updated_at) == (1, T0)
    assert uow.commits == 1
    stored = await queries.get_author(author.id)
    assert (stored["version"], stored["updated_at"]) == (1, stored_time(T0))


async def test_a_revision_with_a_change_commits_and_bumps_the_version(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork, clock: FakeClock
) -> None:
    author = await register(service, "Octavia Butler", birth_year=1947, bio="Kindred")
    later = clock.advance()
    revised = await service.revise_author(author.id, ReviseAuthor(name="Octavia E. Butler"))
    assert uow.commits == 2
    assert (revised.name, revised.version, revised.updated_at) == ("Octavia E. Butler", 2, later)
    stored = await queries.get_author(author.id)
    assert (stored["name"], stored["birth_year"], stored["bio"], stored["version"]) == (
        "Octavia E. Butler",
        1947,
        "Kindred",
        2,
    )
    clock.advance()
    await service.revise_author(author.id, ReviseAuthor(bio=None))
    stored = await queries.get_author(author.id)
    assert (stored["bio"], stored["version"], uow.commits) == (None, 3, 3)


async def test_a_revision_breaking_a_rule_commits_nothing(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    author = await register(service, "Octavia E. Butler", birth_year=1947)
    with pytest.raises(RuleViolationError) as exc:
        await service.revise_author(author.id, ReviseAuthor(death_year=1946))
    assert exc.value.errors[0].loc == ("death_year",)
    assert uow.commits == 1
    stored = await queries.get_author(author.id)
    assert (stored["death_year"], stored["version"]) == (None, 1)


async def test_revising_an_unknown_author_raises_not_found(
    service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    with pytest.raises(AuthorNotFoundError):
        await service.revise_author(uuid.uuid4(), ReviseAuthor(name="Nobody"))
    assert not uow.committed


# --- delete -------------------------------------------------------------------------------


async def test_a_deleted_author_is_gone(
    queries: AuthorQueries, service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    author = await register(service)
    await service.delete_author(author.id)
    assert uow.commits == 2
    with pytest.raises(AuthorNotFoundError):
        await queries.get_author(author.id)


async def test_an_author_credited_on_books_cannot_be_deleted(
    queries: AuthorQueries,
    service: AuthorService,
    uow: FakeAuthorsUnitOfWork,
    catalog: FakeBookCatalog,
) -> None:
    author = await register(service)
    catalog.credited.add(author.id)
    with pytest.raises(AuthorHasBooksError) as exc:
        await service.delete_author(author.id)
    assert exc.value.author_id == author.id
    assert uow.commits == 1
    assert (await queries.get_author(author.id))["name"] == "Ursula K. Le Guin"


async def test_only_the_credited_author_is_protected(
    queries: AuthorQueries, service: AuthorService, catalog: FakeBookCatalog
) -> None:
    credited = await register(service, "Credited")
    free = await register(service, "Free")
    catalog.credited.add(credited.id)
    await service.delete_author(free.id)
    with pytest.raises(AuthorNotFoundError):
        await queries.get_author(free.id)
    assert (await queries.get_author(credited.id))["name"] == "Credited"


async def test_deleting_an_unknown_author_raises_not_found(
    service: AuthorService, uow: FakeAuthorsUnitOfWork
) -> None:
    with pytest.raises(AuthorNotFoundError):
        await service.delete_author(uuid.uuid4())
    assert not uow.committed


# --- list ---------------------------------------------------------------------------------

NAMES = ["Carol", "alice", "Bob", "Alice", "Dave", "Alice", "Émile", "Zoë", "Bob"]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 9, 10, 100])
async def test_walking_the_pages_sees_each_author_once_in_name_order(
    queries: AuthorQueries, service: AuthorService, limit: int
) -> None:
    authors = [await register(service, name) for name in NAMES]
    pages = await walk(queries, limit)
    seen = [a["id"] for page in pages for a in page]
    expected = sorted(authors, key=lambda a: (a.name, str(a.id)))
    assert seen == [str(a.id) for a in expected]
    # No empty trailing page, and every page but the last is full.
    assert len(pages) == math.ceil(len(NAMES) / limit)
    assert all(len(page) == limit for page in pages[:-1])


async def test_an_exactly_full_last_page_has_no_next_cursor(
    queries: AuthorQueries, service: AuthorService
) -> None:
    for name in ["A", "B", "C", "D"]:
        await register(service, name)
    first = await queries.list_authors(q=None, limit=2, cursor=None)
    assert first.next_cursor is not None
    second = await queries.list_authors(q=None, limit=2, cursor=first.next_cursor)
    assert [a["name"] for a in second.items] == ["C", "D"]
    assert second.next_cursor is None


async def test_pages_can_be_filtered_by_a_name_substring_best_match_first(
    queries: AuthorQueries,
    service: AuthorService,
) -> None:
    for name in ["Ursula K. Le Guin", "Stanisław Lem", "Octavia E. Butler", "Leigh Brackett"]:
        await register(service, name)
    pages = await walk(queries, limit=1, q="le")
    names = [a["name"] for page in pages for a in page]
    assert sorted(names) == [
        "Leigh Brackett",
        "Octavia E. Butler",
        "Stanisław Lem",
        "Ursula K. Le Guin",
    ]
    assert names[0] == "Ursula K. Le Guin"  # "le" is a whole word of that name only
    one_page = await queries.list_authors(q="le", limit=10, cursor=None)
    assert [a["name"] for a in one_page.items] == names


# A fixed id in parametrised cursors: the test ids must be the same in every xdist worker.
ANY_ID = "3f1c2b7e-5d4a-4c3b-8a29-1e0f9d8c7b6a"


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("books:title", ["Alice", ANY_ID]),
        encode_cursor("authors:name", ["Alice", "not-a-uuid"]),
        encode_cursor("authors:name", [42, ANY_ID]),
        encode_cursor("authors:name", ["Alice"]),
        "not-a-cursor",
        "",
    ],
)
async def test_a_cursor_not_issued_for_this_list_is_refused(
    queries: AuthorQueries, service: AuthorService, cursor: str
) -> None:
    await register(service, "Alice")
    with pytest.raises(InvalidCursorError) as exc:
        await queries.list_authors(q=None, limit=10, cursor=cursor)
    assert exc.value.errors[0].loc == ("cursor",)
