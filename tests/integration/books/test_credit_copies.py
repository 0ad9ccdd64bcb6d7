"""The books' copies of their credits (migrations 0003 and 0005), whoever writes the books.

A bulk writer gives each book its credits' copy up front and the book is written once; the
credits' trigger still recomputes every copy and corrects the ones that are wrong; the API's
writes (credits replaced, an author renamed, a title changed) keep every copy current.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.books.domain.model import Book
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from tests.contracts.authors import make_author
from tests.integration.credit_copies import check_credit_copies, settled_credit_copies
from tests.integration.helpers import API, create_author, create_book, if_match

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_UPDATES = text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'books'")


async def _authors(factory: async_sessionmaker[AsyncSession], *names: str) -> list[uuid.UUID]:
    authors = [make_author(name) for name in names]
    async with SqlAlchemyAuthorsUnitOfWork(factory) as uow:
        await uow.authors.add_many(authors)
        await uow.commit()
    return [a.id for a in authors]


def _book(title: str, authors: list[uuid.UUID], ref: str, isbn: str | None = None) -> Book:
    return Book.create(
        title=title,
        author_ids=authors,
        isbn=isbn,
        publication_year=None,
        language=None,
        external_ref=ref,
        now=T0,
    )


async def test_add_many_writes_each_book_once_with_current_copies(
    session_factory: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    a, b, c = await _authors(session_factory, "Émile Zola", "Ann Leckie", "Zoë Heller")
    await _add(session_factory, [_book("Taken", [a], "src:0", isbn="0306406152")])
    books = [
        _book("Germinal", [a], "src:1"),
        _book("Ancillary Justice", [b, c, a], "src:2"),
        _book("Notes on a Scandal", [c, b], "src:3"),
        _book("Same ISBN as Taken", [b], "src:4", isbn="0306406152"),  # skipped: ISBN taken
    ]
    async with SqlAlchemyBooksUnitOfWork(session_factory) as uow:
        # The backend's counts may still hold an earlier test's updates on this connection
        # (PostgreSQL flushes them to the shared statistics at most once a second): a difference.
        before = await uow.session.scalar(_UPDATES) or 0
        added = await uow.books.add_many(books)
        # No book was updated after its insert: the credits' trigger found them current.
        updates = (await uow.session.scalar(_UPDATES) or 0) - before
        await uow.commit()
    assert added == {books[0].id, books[1].id, books[2].id}
    assert updates == 0

    copies = await check_credit_copies(engine)
    assert (copies.books, copies.stale, copies.with_coauthors) == (4, [], 2)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT credited_ids, credited_names FROM books WHERE id = :id"),
                {"id": books[1].id},
            )
        ).one()
        found = await conn.scalar(
            text("SELECT id FROM books WHERE search_document @@ search_query('zoe justice')")
        )
    assert (row.credited_ids, row.credited_names) == (
        [b, c, a],
        ["Ann Leckie", "Zoë Heller", "Émile Zola"],
    )
    assert found == books[1].id


async def _add(factory: async_sessionmaker[AsyncSession], books: list[Book]) -> None:
    async with SqlAlchemyBooksUnitOfWork(factory) as uow:
        await uow.books.add_many(books)
        await uow.commit()


@pytest.mark.parametrize(
    ("given_ids", "given_names"),
    [
        pytest.param("ba", [], id="ids in another order"),
        pytest.param("a", [], id="an author missing"),
        pytest.param("ab", ["Somebody", "Else"], id="names that are not theirs"),
        pytest.param("", ["Ann Leckie"], id="names without ids"),
    ],
)
async def test_credits_correct_a_copy_given_up_front_that_does_not_match_them(
    session_factory: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    given_ids: str,
    given_names: list[str],
) -> None:
    a, b = await _authors(session_factory, "Ann Leckie", "Émile Zola")
    book_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO books (id, title, credited_ids, credited_names)"
                " VALUES (:id, 'Provenance', CAST(:ids AS uuid[]), CAST(:names AS text[]))"
            ),
            {"id": book_id, "ids": [{"a": a, "b": b}[k] for k in given_ids], "names": given_names},
        )
        await conn.execute(
            text(
                "INSERT INTO book_authors (book_id, author_id, position)"
                " VALUES (:book, :a, 0), (:book, :b, 1)"
            ),
            {"book": book_id, "a": a, "b": b},
        )
    copies = await check_credit_copies(engine)
    assert (copies.books, copies.stale, copies.with_coauthors) == (1, [], 1)


async def test_the_api_writes_keep_every_copy_current(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    leckie = await create_author(client, "Ann Leckie")
    zola = await create_author(client, "Émile Zola")
    heller = await create_author(client, "Zoë Heller")
    one = await create_book(client, "Provenance", [leckie["id"], zola["id"]])
    two = await create_book(client, "Germinal", [zola["id"]])
    assert (await check_credit_copies(engine)).stale == []

    url = f"{API}/books/{one['id']}"
    headers = await if_match(client, url)
    changed = await client.patch(
        url, json={"author_ids": [heller["id"], leckie["id"]]}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    url = f"{API}/books/{two['id']}"
    changed = await client.patch(url, json={"title": "Nana"}, headers=await if_match(client, url))
    assert changed.status_code == 200, changed.text
    url = f"{API}/authors/{leckie['id']}"
    renamed = await client.patch(
        url, json={"name": "Ann Leckie (2)"}, headers=await if_match(client, url)
    )
    assert renamed.status_code == 200, renamed.text

    copies = await settled_credit_copies(engine)  # the rename arrives through the relay
    assert (copies.books, copies.stale, copies.with_coauthors) == (2, [], 1)
    found = (await client.get(f"{API}/books", params={"q": "zoe leckie"})).json()["items"]
    assert [(b["title"], [a["name"] for a in b["authors"]]) for b in found] == [
        ("Provenance", ["Zoë Heller", "Ann Leckie (2)"])
    ]
