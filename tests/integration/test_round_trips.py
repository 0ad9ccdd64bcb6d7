"""What each request costs the database: statements (constant in the page size) and round trips.

Statements are counted as SQLAlchemy sends them (``before_cursor_execute``) and as asyncpg's
query loggers see them: the read pool's connections, and what units of work send on the write
side's connections themselves (a book's INSERT: shared.persistence.driver); each is one round
trip once its prepared statement is cached. The rest asyncpg sends on the write side's
connections (BEGIN, COMMIT, ROLLBACK, pool pings) are the extra round trips: a read must send
none of them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import make_url

from library.bootstrap.app import create_app
from shared.settings import Settings
from tests.integration.conftest import _container
from tests.integration.helpers import API
from tests.unit.test_seed import SAMPLE
from tools.seed import CatalogProfile, seed

PAGE_SIZES = (1, 20, 100)
MAX_READ_STATEMENTS = 3


@dataclass
class Traffic:
    """What the app sent to PostgreSQL since the last ``reset``."""

    statements: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)

    async def reset(self) -> None:
        """Forget what was sent so far (once the loggers of statements already run are in)."""
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers with loop.call_soon
        self.statements.clear()
        self.extras.clear()

    async def control(self) -> list[str]:
        """The extra round trips, upper-cased (BEGIN ..., COMMIT, ROLLBACK, ping)."""
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers with loop.call_soon
        return [e.strip(" ;").upper() or "PING" for e in self.extras]

    async def cost(self) -> tuple[int, list[str]]:
        """How many statements since ``reset``, and the extra round trips."""
        extras = await self.control()
        return len(self.statements), extras


@pytest.fixture(params=[False], ids=["default"])
async def app(
    request: pytest.FixtureRequest, settings: Settings, clean_database: None
) -> AsyncIterator[FastAPI]:
    """The app of conftest as configured by default (no pre-ping: docs/guarantees.md "Faults"); the
    optional write-side ping is pinned down by ``test_the_optional_pre_ping_...``."""
    tuned = settings.model_copy(update={"db_pool_pre_ping": request.param})
    application = create_app(container=_container(tuned))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def traffic(app: FastAPI) -> AsyncIterator[Traffic]:
    seen = Traffic()
    engine = app.state.container.engine().sync_engine
    logged: set[int] = set()

    def on_statement(*args: Any) -> None:
        seen.statements.append(args[2])

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) not in logged:
            logged.add(id(driver))
            driver.add_query_logger(on_write)

    def on_write(record: Any) -> None:
        query = record.query.strip(" ;").upper()
        control = query in ("", "COMMIT", "ROLLBACK", "SELECT 1") or query.startswith("BEGIN")
        (seen.extras if control else seen.statements).append(record.query)

    def on_read(record: Any) -> None:
        seen.statements.append(record.query)

    read_pool = app.state.container.read_pool()
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine.pool, "checkout", on_checkout)
    await read_pool.add_query_logger(on_read)
    yield seen
    await read_pool.remove_query_logger(on_read)
    event.remove(engine.pool, "checkout", on_checkout)
    event.remove(engine, "before_cursor_execute", on_statement)


@pytest.fixture
async def catalog(client: httpx.AsyncClient, database_url: str) -> dict[str, Any]:
    """150 books by 30 authors (1 to 3 authors a book), and one book and author to look at."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    await seed(dsn, CatalogProfile.from_csv(SAMPLE), books=150, seed=11)
    books = (await client.get(f"{API}/books", params={"limit": 100})).json()["items"]
    prolific: dict[str, int] = {}
    for book in books:
        for author in book["authors"]:
            prolific[author["id"]] = prolific.get(author["id"], 0) + 1
    author_id = max(prolific, key=lambda a: prolific[a])
    assert prolific[author_id] >= 2
    return {"book": books[0], "author_id": author_id}


def _reads(catalog: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    author_id = catalog["author_id"]
    return {
        "books": (f"{API}/books", {}),
        "books by title": (f"{API}/books", {"sort": "title"}),
        "books filtered": (f"{API}/books", {"language": "en", "year_from": 1900}),
        "books search": (f"{API}/books", {"q": "the"}),
        "books of an author (filter)": (f"{API}/books", {"author_id": author_id}),
        "books of an author": (f"{API}/authors/{author_id}/books", {}),
        "authors": (f"{API}/authors", {}),
        "authors search": (f"{API}/authors", {"q": "an"}),
    }


async def _cost(
    client: httpx.AsyncClient, traffic: Traffic, path: str, params: dict[str, Any]
) -> tuple[int, list[str]]:
    # Once to warm the prepared-statement cache (a first PREPARE is a round trip of its own).
    assert (await client.get(path, params=params)).status_code == 200
    await traffic.reset()
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return await traffic.cost()


async def test_list_statements_do_not_grow_with_the_page_size(
    client: httpx.AsyncClient, traffic: Traffic, catalog: dict[str, Any]
) -> None:
    for name, (path, params) in _reads(catalog).items():
        counts = {}
        for size in PAGE_SIZES:
            counts[size], _ = await _cost(client, traffic, path, {**params, "limit": size})
        assert len(set(counts.values())) == 1, f"{name}: statements per page size {counts}"
        assert counts[1] <= MAX_READ_STATEMENTS, f"{name}: {counts[1]} statements"


async def test_reads_send_their_queries_and_nothing_else(
    client: httpx.AsyncClient, traffic: Traffic, catalog: dict[str, Any]
) -> None:
    reads = _reads(catalog)
    reads["one book"] = (f"{API}/books/{catalog['book']['id']}", {})
    reads["one author"] = (f"{API}/authors/{catalog['author_id']}", {})
    reads["missing book"] = (f"{API}/books/{uuid.uuid4()}", {})
    for name, (path, params) in reads.items():
        if name == "missing book":
            assert (await client.get(path)).status_code == 404
            await traffic.reset()
            assert (await client.get(path)).status_code == 404
            statements, extras = await traffic.cost()
        else:
            statements, extras = await _cost(client, traffic, path, params)
        assert 1 <= statements <= MAX_READ_STATEMENTS, name
        assert extras == [], f"{name}: {extras} besides the queries"


async def test_one_book_with_its_authors_is_one_statement(
    client: httpx.AsyncClient, traffic: Traffic, catalog: dict[str, Any]
) -> None:
    book = catalog["book"]
    statements, extras = await _cost(client, traffic, f"{API}/books/{book['id']}", {})
    assert (statements, extras) == (1, [])
    assert (await client.get(f"{API}/books/{book['id']}")).json() == book


async def test_writes_still_run_in_a_transaction_committed_before_the_response(
    client: httpx.AsyncClient, traffic: Traffic, catalog: dict[str, Any]
) -> None:
    await traffic.reset()
    response = await client.post(
        f"{API}/books", json={"title": "Counted", "author_ids": [catalog["author_id"]]}
    )
    assert response.status_code == 201
    control = await traffic.control()
    assert control[0].startswith("BEGIN")
    assert control[-1] == "COMMIT"
    # The book, its credits and its event go in as one statement: a round trip, not three.
    tables = ("INSERT INTO books", "INSERT INTO book_authors", "INSERT INTO events")
    writes = [s for s in traffic.statements if any(t in s for t in tables)]
    assert len(writes) == 1
    assert all(t in writes[0] for t in tables)


@pytest.mark.parametrize("app", [True], indirect=True, ids=["pre-ping"])
async def test_the_optional_pre_ping_is_one_ping_per_write_and_none_per_read(
    client: httpx.AsyncClient, traffic: Traffic, catalog: dict[str, Any]
) -> None:
    book = catalog["book"]
    statements, extras = await _cost(client, traffic, f"{API}/books/{book['id']}", {})
    assert (statements, extras) == (1, [])
    for title in ("Warm-up", "Pinged"):  # the first write lets the traffic see its connection
        await traffic.control()  # the previous request's last round trips are logged late
        await traffic.reset()
        response = await client.post(
            f"{API}/books", json={"title": title, "author_ids": [catalog["author_id"]]}
        )
    assert response.status_code == 201
    control = await traffic.control()
    assert control[0] == "SELECT 1"
    assert control[1].startswith("BEGIN")
