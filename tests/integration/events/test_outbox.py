"""The outbox: every write records its events in its own transaction (README "Guarantees")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.auth import bearer
from tests.integration.helpers import API, create_author, create_book, if_match

pytestmark = pytest.mark.usefixtures("clean_database")


async def events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT type, resource_id::text AS resource_id, version, occurred_at, data, "
                "request_id, actor FROM events ORDER BY xid, id"
            )
        )
        return [dict(row._mapping) for row in rows]


async def test_each_write_records_one_event_with_who_when_and_what(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = {"X-Request-ID": "req-create-author", **bearer(sub="alice")}
    author = (
        await client.post(
            f"{API}/authors",
            json={"name": "Ursula K. Le Guin", "birth_year": 1929},
            headers=headers,
        )
    ).json()
    book = await create_book(client, "The Dispossessed", [author["id"]], isbn="9780060512750")
    url = f"{API}/books/{book['id']}"
    patched = await client.patch(
        url,
        json={"title": "The Dispossessed: An Ambiguous Utopia"},
        headers=await if_match(client, url),
    )
    assert patched.status_code == 200
    author_url = f"{API}/authors/{author['id']}"
    renamed = await client.patch(
        author_url, json={"name": "Ursula Le Guin"}, headers=await if_match(client, author_url)
    )
    assert renamed.status_code == 200
    assert (await client.delete(url, headers=await if_match(client, url))).status_code == 204
    assert (
        await client.delete(author_url, headers=await if_match(client, author_url))
    ).status_code == 204

    recorded = await events(engine)
    assert [(e["type"], e["resource_id"], e["version"]) for e in recorded] == [
        ("author.created", author["id"], 1),
        ("book.created", book["id"], 1),
        ("book.updated", book["id"], 2),
        ("author.updated", author["id"], 2),
        ("book.deleted", book["id"], 2),
        ("author.deleted", author["id"], 2),
    ]
    created = recorded[0]
    assert created["request_id"] == "req-create-author"
    assert created["actor"] == "alice"
    assert created["data"]["name"] == "Ursula K. Le Guin"
    assert created["data"]["birth_year"] == 1929
    assert created["data"]["version"] == 1
    assert isinstance(created["occurred_at"], datetime)
    # A create carries the whole resource; an update only what changed.
    assert recorded[1]["data"]["author_ids"] == [author["id"]]
    assert recorded[1]["data"]["isbn"] == "9780060512750"
    assert recorded[1]["actor"] == "tester"
    assert recorded[1]["request_id"]  # made by the service when the client sends none
    assert set(recorded[2]["data"]) == {"title", "updated_at"}
    assert recorded[2]["data"]["title"] == "The Dispossessed: An Ambiguous Utopia"
    assert set(recorded[3]["data"]) == {"name", "updated_at"}
    assert recorded[4]["data"] == {}


async def test_a_refused_write_records_nothing_and_a_no_op_patch_records_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    author = await create_author(client)
    await create_book(client, "A Wizard of Earthsea", [author["id"]], isbn="9780547773742")
    before = len(await events(engine))
    duplicate = await client.post(
        f"{API}/books",
        json={"title": "Another", "author_ids": [author["id"]], "isbn": "9780547773742"},
    )
    assert duplicate.status_code == 409
    stale = await client.patch(
        f"{API}/authors/{author['id']}", json={"name": "X"}, headers={"If-Match": '"7"'}
    )
    assert stale.status_code == 412
    same = await client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": author["name"]},
        headers={"If-Match": '"1"'},
    )
    assert same.status_code == 200
    assert len(await events(engine)) == before


async def test_an_idempotent_retry_records_no_second_event(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = {"Idempotency-Key": "retry-once-1"}
    for _ in range(2):
        response = await client.post(f"{API}/authors", json={"name": "Le Guin"}, headers=key)
        assert response.status_code == 201
    assert [e["type"] for e in await events(engine)] == ["author.created"]
