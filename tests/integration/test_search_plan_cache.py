"""A search keeps its speed on a connection that has served common-word searches.

The app's driver prepares each statement once per connection and reuses it (asyncpg's
statement cache, on the read pool where searches run). After five executions of a prepared
statement PostgreSQL may switch it to a generic plan, made without the parameters' values,
when that plan looks no more expensive than the custom plans so far. Common words make those
custom plans expensive, so before migration 0006 a few common-word searches switched the
search statement to a generic plan that runs ``search_query`` on every row and is about ten
times slower for every later search on that connection. The test runs the searches through
the API on a read pool of exactly one connection, as the app runs them, and checks what
PostgreSQL did with the prepared statements.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from shared.persistence.reads import ReadPool
from shared.settings import Settings
from tests.integration.helpers import API, create_author, create_book, running_app
from tests.unit.test_seed import SAMPLE
from tools.seed import CatalogProfile, seed

pytestmark = pytest.mark.scale

BOOKS = 20_000
RARE = "zyzzogeton"
COMMON_WORDS = ("the", "of", "tolkien", "ursula", "kafka")  # 10-50% of the catalog


async def _search_ms(client: httpx.AsyncClient, q: str, runs: int) -> float:
    """The best time of ``runs`` first pages of ``GET /books?q=``, in milliseconds (the best
    of several, so that a busy machine does not fail the comparison; a slower plan is slower
    every time)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(f"{API}/books", params={"q": q})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return min(times)


def _literal(value: Any) -> str:
    """``value`` as an untyped SQL literal (EXECUTE takes no bind parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


async def _prepared_searches(reads: ReadPool) -> list[dict[str, Any]]:
    """The search statements prepared on the read pool's one connection, with their plan
    counts."""
    rows = await reads.fetch(
        "SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE '%search_query(%'"
        " AND statement NOT LIKE '%pg_prepared_statements%'"
    )
    return [dict(row) for row in rows]


async def test_common_words_do_not_switch_searches_to_a_generic_plan(
    settings: Settings, database_url: str, clean_database: None
) -> None:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    await seed(dsn, CatalogProfile.from_csv(SAMPLE), books=BOOKS, seed=11)
    one_connection = settings.model_copy(update={"db_read_pool_size": 1})
    async with running_app(one_connection) as (app, client):
        reads: ReadPool = app.state.container.read_pool()
        sent: list[tuple[str, tuple[Any, ...]]] = []
        # Before any search: adding a logger replaces the pool's connections.
        await reads.add_query_logger(lambda record: sent.append((record.query, record.args)))
        author = await create_author(client, "Ada Quillfeather")
        for volume in range(1, 6):
            await create_book(client, f"The {RARE.title()} Papers, vol. {volume}", [author["id"]])
        found = (await client.get(f"{API}/books", params={"q": RARE})).json()["items"]
        assert len(found) == 5

        before = await _search_ms(client, RARE, 10)
        for word in COMMON_WORDS * 2:
            response = await client.get(f"{API}/books", params={"q": word})
            assert response.status_code == 200, response.text
            assert len(response.json()["items"]) == 20
        after = await _search_ms(client, RARE, 10)
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers with loop.call_soon
        statement, parameters = sent[-1]
        assert RARE in parameters, sent[-1]

        searches = await _prepared_searches(reads)
        assert searches, "no search statement was prepared on the connection"
        switched = [(s["statement"], s["generic_plans"]) for s in searches if s["generic_plans"]]
        assert not switched, f"searches switched to a generic plan: {switched}"
        # The plan PostgreSQL would use for the next rare search on this connection is made
        # with the search's words (a generic plan would show search_query($n) instead).
        name = next(s["name"] for s in searches if s["statement"] == statement)
        args = ", ".join(_literal(p) for p in parameters)
        plan = (await reads.fetch(f'EXPLAIN (FORMAT JSON) EXECUTE "{name}"({args})'))[0][0]
        assert "search_query(" not in json.dumps(plan), plan
        assert after <= 2 * before, f"rare search: {before:.1f} ms before, {after:.1f} ms after"
