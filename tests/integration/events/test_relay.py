"""The outbox relay and the books' copy of author names (README "Guarantees", docs/events.md)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.services import AuthorService, ReviseAuthor
from library.authors.infrastructure.unit_of_work import SqlAlchemyAuthorsUnitOfWork
from library.books.application.ports import BooksUnitOfWork
from library.books.application.services import AddBook, BookService
from library.books.infrastructure.credited_names import SqlAlchemyAuthorNameCopies
from library.books.infrastructure.unit_of_work import SqlAlchemyBooksUnitOfWork
from shared.kernel.events import DomainEvent
from shared.persistence.relay import EventNotifier, OutboxRelay, Subscriber
from tests.integration.credit_copies import settled_credit_copies
from tests.integration.helpers import API, create_author, create_book, relay_caught_up

pytestmark = pytest.mark.usefixtures("clean_database")


class Gate:
    """Holds a unit of work at its commit until opened."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await self.opened.wait()


class GatedAuthorsUnitOfWork(SqlAlchemyAuthorsUnitOfWork):
    gate: Gate

    async def commit(self) -> None:
        await self.outbox.flush()  # the event is written; only COMMIT waits
        await self.gate.pass_through()
        await super().commit()


class GatedBooksUnitOfWork(SqlAlchemyBooksUnitOfWork):
    gate: Gate

    async def commit(self) -> None:
        await self.gate.pass_through()
        await super().commit()


class NoBooks:
    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        return False


class NoDirectory:
    async def names_of(self, author_ids: Any) -> dict[uuid.UUID, str]:
        return {}

    async def resolve_names(self, names: Any, *, register_missing: bool) -> Any:
        raise NotImplementedError


async def names_of_book(client: httpx.AsyncClient, book_id: str, expected: str) -> list[str]:
    """The book's credited names, once they are ``expected`` (or after 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        book = (await client.get(f"{API}/books/{book_id}")).json()
        names = [a["name"] for a in book["authors"]]
        if names == [expected] or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.05)


async def test_a_book_created_during_a_rename_ends_with_the_new_name(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The rename race: the rename has written but not committed when a book crediting the
    author is created; the book reads the old name and commits first. The trigger this relay
    replaced refreshed the books it could see at the rename's UPDATE: not this one, forever
    stale. The book's own book.created (or the rename's event) now brings it the new name."""
    author = await create_author(client, "Old Name")
    gate = Gate()
    uow = GatedAuthorsUnitOfWork(session_factory)
    uow.gate = gate
    rename = asyncio.create_task(
        AuthorService(cast(AuthorsUnitOfWork, uow), NoBooks()).revise_author(
            uuid.UUID(author["id"]), ReviseAuthor(name="New Name")
        )
    )
    await asyncio.wait_for(gate.reached.wait(), 10)
    book = await create_book(client, "Raced", [author["id"]])
    assert [a["name"] for a in book["authors"]] == ["Old Name"]  # what it could see then
    gate.opened.set()
    await rename
    assert await names_of_book(client, book["id"], "New Name") == ["New Name"]
    assert (await settled_credit_copies(engine)).stale == []


async def test_a_rename_reaches_its_books_a_few_per_transaction(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A renamed author's books are given the new name a bounded number per transaction: a book
    another transaction holds delays only its own few, the others have the name already (one
    transaction for all held every book's lock until the last could be written)."""
    author = await create_author(client, "Old Name")
    books = [await create_book(client, f"Book {n}", [author["id"]]) for n in range(6)]
    ids = sorted(uuid.UUID(b["id"]) for b in books)
    copies = SqlAlchemyAuthorNameCopies(session_factory, books_per_transaction=2)
    await relay_caught_up(engine)  # the app's relay is done with the books' own events

    async def names() -> dict[uuid.UUID, list[str]]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, credited_names FROM books"))
            return {row[0]: list(row[1]) for row in rows}

    async with engine.connect() as holder, holder.begin():
        # A write holds the last book (in id order: the last of the keeper's transactions).
        await holder.execute(text("SELECT 1 FROM books WHERE id = :id FOR UPDATE"), {"id": ids[-1]})
        # Applied directly, with no event (the app's relay has nothing to redo behind it).
        rename = asyncio.create_task(copies.apply({uuid.UUID(author["id"]): ("New", 99)}, []))
        deadline = time.monotonic() + 4  # within the keeper's lock timeout (5 s)
        while (await names())[ids[3]] != ["New"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        seen = await names()
        assert [seen[i] for i in ids] == [["New"]] * 4 + [["Old Name"]] * 2
    await asyncio.wait_for(rename, 10)
    assert set(map(tuple, (await names()).values())) == {("New",)}


async def test_a_rename_during_a_book_create_ends_with_the_new_name(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The other order: the book has written (with the old name) when the rename commits."""
    author = await create_author(client, "Old Name")
    gate = Gate()
    uow = GatedBooksUnitOfWork(session_factory)
    uow.gate = gate
    add = asyncio.create_task(
        BookService(cast(BooksUnitOfWork, uow), NoDirectory()).add_book(
            AddBook(title="Raced", author_ids=[uuid.UUID(author["id"])])
        )
    )
    await asyncio.wait_for(gate.reached.wait(), 10)
    url = f"{API}/authors/{author['id']}"
    renamed = await client.patch(url, json={"name": "New Name"}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200
    gate.opened.set()
    view = await add
    assert await names_of_book(client, str(view.book.id), "New Name") == ["New Name"]
    assert (await settled_credit_copies(engine)).stale == []


async def test_the_relay_redelivers_what_a_failed_or_killed_delivery_left_and_loses_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for n in range(6):
        await create_author(client, f"Author {n}")
    handled: list[str] = []
    failures = [1]

    async def flaky(events: Sequence[DomainEvent]) -> None:
        for event in events:
            if len(handled) == 3 and failures:
                failures.clear()
                raise RuntimeError("the worker died here")  # events 0-2 handled, not recorded
            handled.append(event.data["name"])

    async with asyncio.timeout(20):  # all six final (no older transaction of the server left)
        while True:
            async with engine.connect() as conn:
                final = await conn.scalar(
                    text(
                        "SELECT count(*) FROM events WHERE xid < "
                        "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"
                    )
                )
            if final == 6:
                break
            await asyncio.sleep(0.05)
    relay = OutboxRelay(engine, [Subscriber("test.flaky", flaky)], EventNotifier(), batch_size=4)
    deadline = time.monotonic() + 20
    while handled[-1:] != ["Author 5"] and time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            await relay.run_once()
        await asyncio.sleep(0.05)
    # The failed batch is delivered again from its start: at least once, in order, none lost.
    names = [f"Author {n}" for n in range(6)]
    assert handled == names[:3] + names
    async with engine.connect() as conn:
        position = (
            await conn.execute(
                text("SELECT xid, id FROM relay_positions WHERE subscriber = 'test.flaky'")
            )
        ).one()
        last = (await conn.execute(text("SELECT max(xid), max(id) FROM events"))).one()
    assert tuple(position) == tuple(last)


async def test_workers_share_a_subscriber_without_delivering_an_event_twice(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for n in range(10):
        await create_author(client, f"Author {n}")
    handled: list[uuid.UUID] = []

    async def slow(events: Sequence[DomainEvent]) -> None:
        handled.extend(e.resource_id for e in events)
        await asyncio.sleep(0.01)

    workers = [
        OutboxRelay(engine, [Subscriber("test.shared", slow)], EventNotifier(), batch_size=3)
        for _ in range(3)
    ]
    deadline = time.monotonic() + 20
    while len(handled) < 10 and time.monotonic() < deadline:
        await asyncio.gather(*(w.run_once() for w in workers))
    assert len(handled) == 10
    assert len(set(handled)) == 10


async def test_a_subscriber_gets_only_its_types_and_only_the_data_it_reads(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    author = await create_author(client, "Ursula Le Guin")
    book = await create_book(client, "The Dispossessed", [author["id"]])
    await client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": "Ursula K. Le Guin"},
        headers={"If-Match": f'"{author["version"]}"'},
    )
    handled: list[DomainEvent] = []

    async def keep(events: Sequence[DomainEvent]) -> None:
        handled.extend(events)

    subscriber = Subscriber(
        "test.narrow",
        keep,
        types=frozenset({"author.updated", "book.created"}),
        data_of=frozenset({"author.updated"}),
    )
    relay = OutboxRelay(engine, [subscriber], EventNotifier())
    await relay_caught_up(engine)
    deadline = time.monotonic() + 20
    while len(handled) < 2 and time.monotonic() < deadline:
        await relay.run_once()
        await asyncio.sleep(0.05)
    # author.created is skipped; book.created comes without its document; the rename with it.
    assert [(e.type, str(e.resource_id)) for e in handled] == [
        ("book.created", book["id"]),
        ("author.updated", author["id"]),
    ]
    assert handled[0].data == {}
    assert handled[0].version == 1
    assert handled[0].event_id is not None
    assert handled[1].data["name"] == "Ursula K. Le Guin"
    # Its position is past every event, the skipped ones included: none is delivered again.
    assert await relay.run_once() == 0
    async with engine.connect() as conn:
        position = (
            await conn.execute(
                text("SELECT xid, id FROM relay_positions WHERE subscriber = 'test.narrow'")
            )
        ).one()
        last = (
            await conn.execute(
                text("SELECT xid, id FROM events ORDER BY xid DESC, id DESC LIMIT 1")
            )
        ).one()
    assert tuple(position) == tuple(last)


async def test_events_past_the_retention_are_pruned_unless_a_subscriber_still_needs_them(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        # Younger than the app's own retention (30 days): its relay, pruning on its own schedule,
        # leaves them to this test's relay (5 days).
        for days in (10, 8, 1):
            await conn.execute(
                text(
                    "INSERT INTO events (type, resource_id, version, occurred_at, data) "
                    "VALUES ('author.created', :id, 1, now() - make_interval(days => :days), "
                    "'{}')"
                ),
                {"id": uuid.uuid4(), "days": days},
            )
        ids = list(await conn.scalars(text("SELECT id FROM events ORDER BY occurred_at")))
        # A subscriber has handled the oldest event only: the second must wait for it.
        await conn.execute(
            text(
                "INSERT INTO relay_positions (subscriber, xid, id) "
                "SELECT 'test.behind', xid, id FROM events WHERE id = :id"
            ),
            {"id": ids[0]},
        )
    # The module's app (when running) delivers these too: its keeper's position, started again
    # from the beginning after the tables were emptied (its row re-created at 0 when the relay
    # next runs), holds them back until it has passed them.
    await relay_caught_up(engine)
    relay = OutboxRelay(engine, [], EventNotifier(), retention_days=5)
    assert await relay.prune() == 1
    async with engine.begin() as conn:
        assert list(await conn.scalars(text("SELECT id FROM events ORDER BY id"))) == ids[1:]
        # The lagging subscriber catches up (the app's relay, past them all, holds nothing back).
        await conn.execute(
            text(
                "UPDATE relay_positions SET (xid, id) = "
                "(SELECT xid, id FROM events WHERE id = :id) WHERE subscriber = 'test.behind'"
            ),
            {"id": ids[2]},
        )
    assert await relay.prune() == 1
    async with engine.connect() as conn:
        assert list(await conn.scalars(text("SELECT id FROM events"))) == ids[2:]
