"""Races: the database, not luck, keeps the invariants when requests run at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import (
    API,
    assert_problem,
    create_author,
    create_book,
    relay_caught_up,
)

pytestmark = pytest.mark.race


async def test_twenty_creates_racing_for_one_isbn_give_one_201(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Racer")
    for round_ in range(3):
        isbn = ["9780575048003", "0-06-051275-X", "9780439023481"][round_]
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{API}/books",
                    json={"title": f"Copy {i}", "author_ids": [author["id"]], "isbn": isbn},
                )
                for i in range(20)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 19
        winner = next(r.json()["id"] for r in responses if r.status_code == 201)
        for response in responses:
            if response.status_code == 409:
                # Each refusal names the winner, found after the unique constraint refused it.
                body = assert_problem(response, 409, "duplicate-isbn")
                assert body["existing_id"] == winner
                assert body["existing"] == f"{API}/books/{winner}"
    page = (await client.get(f"{API}/books", params={"limit": 100})).json()
    assert len(page["items"]) == 3


async def test_deleting_an_author_while_a_book_credits_them(client: httpx.AsyncClient) -> None:
    for _ in range(10):
        author = await create_author(client, "Contested Author")
        create, delete = await asyncio.gather(
            client.post(f"{API}/books", json={"title": "Race", "author_ids": [author["id"]]}),
            client.delete(f"{API}/authors/{author['id']}", headers={"If-Match": "*"}),
        )
        outcome = (create.status_code, delete.status_code)
        assert outcome in {(201, 409), (422, 204)}, outcome
        if create.status_code == 201:
            await client.delete(f"{API}/books/{create.json()['id']}", headers={"If-Match": "*"})
            await client.delete(f"{API}/authors/{author['id']}", headers={"If-Match": "*"})


async def test_walking_pages_while_rows_are_inserted_sees_each_row_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client, "Steady")
    original = [
        await create_book(client, f"Title {i:03d}", [author["id"]], publication_year=1900 + i % 7)
        for i in range(30)
    ]
    for sort in (
        "created_at",
        "-created_at",
        "title",
        "-title",
        "publication_year",
        "-publication_year",
    ):
        seen: list[dict[str, Any]] = []
        cursor = None
        inserted = 0
        while True:
            params: dict[str, Any] = {"limit": 7, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(f"{API}/books", params=params)).json()
            seen.extend(page["items"])
            # Someone else writes between our pages: before, inside and after our position.
            for title in ("Title 000a", "Title 015a", "Title 999"):
                inserted += 1
                await create_book(
                    client, f"{title} {sort} {inserted}", [author["id"]], publication_year=1903
                )
            cursor = page["next_cursor"]
            if cursor is None:
                break
        ids = [b["id"] for b in seen]
        assert len(ids) == len(set(ids)), f"a book came twice with sort={sort}"
        original_ids = {b["id"] for b in original}
        assert original_ids <= set(ids), f"a book was skipped with sort={sort}"
        seen_original = [b for b in seen if b["id"] in original_ids]
        field = sort.lstrip("-")
        keys = [b[field] for b in seen_original]
        assert keys == sorted(keys, reverse=sort.startswith("-")), sort


async def test_no_connection_is_left_checked_out_or_idle_in_transaction(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    author = await create_author(client, "Pool")
    await asyncio.gather(
        *(client.get(f"{API}/authors/{author['id']}") for _ in range(30)),
        *(
            client.post(f"{API}/books", json={"title": "P", "author_ids": ["bad"]})
            for _ in range(10)
        ),
        *(
            client.post(
                f"{API}/books",
                json={"title": "P", "author_ids": [author["id"]], "isbn": "9780575048003"},
            )
            for _ in range(10)
        ),
        *(client.get(f"{API}/books", params={"cursor": "x"}) for _ in range(10)),
    )
    app_engine = app.state.container.engine()
    assert app_engine.pool.checkedout() == 0
    await relay_caught_up(engine)  # its deliveries are short transactions of their own
    async with engine.connect() as conn:
        idle = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        )
    assert idle == 0
