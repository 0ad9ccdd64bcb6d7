"""Every read the API offers runs on an index: no sequential scan of books, authors or credits.

The statements are the ones the app really sends (captured with ``before_cursor_execute``
while the API serves every filter, sort and search combination, first and later pages), on a
generated catalog with fresh statistics. A catalog this small would make a sequential scan
the cheapest plan, so the planner is told to avoid one (``enable_seqscan = off``): it still
picks one when no index can serve the query, which is what this test catches. Each statement
is explained twice: with its parameters (a custom plan) and as asyncpg's prepared statements
may end up running it after five executions (a generic plan, ``plan_cache_mode =
force_generic_plan``; searches never do, see test_search_plan_cache.py, but their generic plans
are checked too).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from library.books.application.queries import BookSort
from library.books.infrastructure import reader as book_reader
from library.books.infrastructure.reader import RANKED_MATCHES_MAX
from tests.integration.helpers import API
from tests.unit.test_seed import SAMPLE
from tools.seed import CatalogProfile, seed

pytestmark = pytest.mark.scale

TABLES = {"books", "authors", "book_authors"}


@pytest.fixture
async def captured(app: FastAPI) -> AsyncIterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []
    engine = app.state.container.engine().sync_engine

    def on_statement(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    def on_read(record: Any) -> None:
        if record.query.lstrip().upper().startswith("SELECT"):
            statements.append((record.query, record.args))

    read_pool = app.state.container.read_pool()
    event.listen(engine, "before_cursor_execute", on_statement)
    await read_pool.add_query_logger(on_read)
    yield statements
    await read_pool.remove_query_logger(on_read)
    event.remove(engine, "before_cursor_execute", on_statement)


# The scan that ranks a search (computes ts_rank or word_similarity) must find every match
# before they can be sorted: its predicate must be an index condition, never a filter applied
# row by row to a whole walk over another index (the planner's fallback when the search's own
# index is missing). Other scans may walk an index in the page's order and filter: with a
# LIMIT that stops early, it is often the best plan (a sort= order, relevance's unranked parts).
SEARCH_OPERATORS = ("@@", "<%", "~~")
RANKED = ("ts_rank(", "word_similarity(")


def _seq_scans(plan: dict[str, Any]) -> Iterator[str]:
    relation = plan.get("Relation Name")
    if relation in TABLES:
        ranks = any(fn in column for column in plan.get("Output", []) for fn in RANKED)
        if plan.get("Node Type") == "Seq Scan":
            yield f"Seq Scan on {relation}"
        elif (
            ranks
            and plan.get("Node Type") in {"Index Scan", "Index Only Scan"}
            and "Index Cond" not in plan
            and any(op in plan.get("Filter", "") for op in SEARCH_OPERATORS)
        ):
            yield f"{plan['Node Type']} on {relation} ranking while filtering {plan['Filter']}"
    for child in plan.get("Plans", []):
        yield from _seq_scans(child)


async def _plan(engine: AsyncEngine, statement: str, parameters: Any, *, generic: bool) -> Any:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SET enable_seqscan = off")
        if generic:
            await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            await conn.exec_driver_sql(f"PREPARE checked AS {statement}")
            args = ", ".join(_literal(p) for p in parameters)
            explain = "EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE checked"
            explain += f"({args})" if args else ""
            raw = await conn.exec_driver_sql(explain)
        else:
            raw = await conn.exec_driver_sql(
                f"EXPLAIN (VERBOSE, FORMAT JSON) {statement}", parameters
            )
        document = raw.scalar_one()
        if generic:
            await conn.exec_driver_sql("DEALLOCATE checked")
        await conn.exec_driver_sql("RESET ALL")
        await conn.rollback()
    return json.loads(document) if isinstance(document, str) else document


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _literal(value: Any) -> str:
    """``value`` as an untyped SQL literal (EXECUTE takes no bind parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):
        return "'{" + ",".join(str(v) for v in value) + "}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


async def _walk(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> None:
    """The first page and the next one (a keyset bound in the query)."""
    response = await client.get(path, params={**params, "limit": 5})
    assert response.status_code == 200, response.text
    cursor = response.json()["next_cursor"]
    if cursor is not None:
        response = await client.get(path, params={**params, "limit": 5, "cursor": cursor})
        assert response.status_code == 200, response.text


# Relevance ranks a search's word matches up to RANKED_MATCHES_MAX of them and lists a broader
# search unranked: lowered, the common words of this small catalog take the unranked shapes.
@pytest.mark.parametrize("ranked_max", [RANKED_MATCHES_MAX, 50], ids=["ranked", "too-broad"])
async def test_no_read_scans_a_whole_table(
    client: httpx.AsyncClient,
    captured: list[tuple[str, Any]],
    engine: AsyncEngine,
    database_url: str,
    ranked_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(book_reader, "RANKED_MATCHES_MAX", ranked_max)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    await seed(dsn, CatalogProfile.from_csv(SAMPLE), books=3000, seed=5)
    first = (await client.get(f"{API}/books", params={"limit": 1})).json()["items"][0]
    author_id = first["authors"][0]["id"]

    filters: list[dict[str, Any]] = [
        {},
        {"language": "en"},
        {"year_from": 1950},
        {"year_from": 1900, "year_to": 1990},
        {"author_id": author_id},
        {"author_id": author_id, "language": "en", "year_to": 2000},
        {"isbn": "0-06-051275-X"},  # served by the unique index on isbn13
        {"isbn": "9780439023481", "author_id": author_id, "year_from": 1900},
    ]
    searches: list[dict[str, Any]] = [
        {"q": "the"},  # a common word
        {"q": "hobbit"},  # a rare one
        {"q": "tolkien"},  # an author's name
        {"q": "les miserables"},
        {"q": "ob"},  # shorter than the substring search
        {"q": "100%_x"},
    ]
    sorts = [s.value for s in BookSort if s is not BookSort.RELEVANCE]
    for f, sort in itertools.product(filters, sorts):
        await _walk(client, f"{API}/books", {**f, "sort": sort})
    for q, f in itertools.product(searches, filters[:3] + filters[4:5]):
        await _walk(client, f"{API}/books", {**q, **f})  # by relevance
        await _walk(client, f"{API}/books", {**q, **f, "sort": "-publication_year"})
    for sort in sorts:
        await _walk(client, f"{API}/authors/{author_id}/books", {"sort": sort})
    await _walk(client, f"{API}/authors/{author_id}/books", {"q": "the"})
    await _walk(client, f"{API}/authors", {})
    for name in ["tolkein", "hugo", "an", "%", "garcia marquez"]:
        await _walk(client, f"{API}/authors", {"q": name})
    assert (await client.get(f"{API}/books/{first['id']}")).status_code == 200
    assert (await client.get(f"{API}/authors/{author_id}")).status_code == 200

    await asyncio.sleep(0.05)  # asyncpg calls its query loggers with loop.call_soon
    distinct = {(s, _hashable(p)): (s, p) for s, p in captured}
    assert len(distinct) > 100
    failures = []
    for statement, parameters in distinct.values():
        for generic in (False, True):
            plan = (await _plan(engine, statement, parameters, generic=generic))[0]["Plan"]
            scanned = sorted(set(_seq_scans(plan)))
            if scanned:
                kind = "generic" if generic else "custom"
                failures.append(f"{kind} plan scans {scanned}: {statement} {parameters}")
    assert not failures, "\n\n".join(failures)
