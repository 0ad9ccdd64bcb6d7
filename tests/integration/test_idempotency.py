"""Idempotency-Key on POST: a retried create replays its first response and writes nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.helpers import API, assert_problem, create_author


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def _assert_same_response(again: httpx.Response, first: httpx.Response) -> None:
    """A replay is the first response again, byte for byte, with its headers (the stored
    result rendered as the fresh one was)."""
    assert again.content == first.content
    for header in ("location", "etag", "content-type", "content-length"):
        assert again.headers[header] == first.headers[header], header


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_a_repeat_with_the_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = _key()
    body = {"name": "Ursula K. Le Guin", "birth_year": 1929}
    first = await client.post(f"{API}/authors", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # The same values serialised differently are the same request.
    again = await client.post(
        f"{API}/authors",
        content='{"birth_year":1929,  "name":"Ursula K. Le Guin"}',
        headers={**key, "content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    _assert_same_response(again, first)
    assert await _count(engine, "authors") == 1


async def test_the_same_key_with_another_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = _key()
    assert (await client.post(f"{API}/authors", json={"name": "A"}, headers=key)).status_code == 201
    reused = await client.post(f"{API}/authors", json={"name": "B"}, headers=key)
    body = assert_problem(reused, 422, "idempotency-key-reused")
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await _count(engine, "authors") == 1


async def test_a_key_is_scoped_to_its_operation(client: httpx.AsyncClient) -> None:
    key = _key()
    author = (await client.post(f"{API}/authors", json={"name": "A"}, headers=key)).json()
    book = await client.post(
        f"{API}/books", json={"title": "T", "author_ids": [author["id"]]}, headers=key
    )
    assert book.status_code == 201, book.text
    assert "idempotent-replayed" not in book.headers


async def test_books_replay_too(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    author = await create_author(client, "Writer")
    key = _key()
    other = await create_author(client, 'Zoë "Z" O\'Brien \\ 😀')
    body = {
        "title": 'Once: «\\» "quoted"',
        "author_ids": [author["id"], other["id"]],
        "isbn": "9780575048003",
        "publication_year": -300,
        "language": "eng",
    }
    first = await client.post(f"{API}/books", json=body, headers=key)
    again = await client.post(f"{API}/books", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    _assert_same_response(again, first)
    assert await _count(engine, "books") == 1


async def test_a_request_that_failed_stores_nothing_and_may_be_retried(
    client: httpx.AsyncClient,
) -> None:
    key = _key()
    missing = str(uuid.uuid4())
    failed = await client.post(
        f"{API}/books", json={"title": "T", "author_ids": [missing]}, headers=key
    )
    assert_problem(failed, 422, "unknown-authors")
    author = await create_author(client, "Exists")
    retried = await client.post(
        f"{API}/books", json={"title": "T", "author_ids": [author["id"]]}, headers=key
    )
    assert retried.status_code == 201, retried.text


async def test_a_repeat_while_the_first_is_running_is_409(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = "held-key"
    async with engine.connect() as conn:
        # What a running request holds while it works: the key's transaction lock.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            # The scope: the operation and a digest of the client's sub (the tests' "tester").
            {"k": f"POST {API}/authors {hashlib.sha256(b'tester').hexdigest()[:32]} {key}"},
        )
        busy = await client.post(
            f"{API}/authors", json={"name": "A"}, headers={"Idempotency-Key": key}
        )
        assert_problem(busy, 409, "idempotency-key-in-use")
        await conn.rollback()
    done = await client.post(f"{API}/authors", json={"name": "A"}, headers={"Idempotency-Key": key})
    assert done.status_code == 201
    assert await _count(engine, "authors") == 1


@pytest.mark.race
async def test_twenty_concurrent_identical_posts_with_one_key_create_one_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for round_ in range(5):
        key = _key()
        body = {"name": f"Concurrent {round_}"}
        responses = await asyncio.gather(
            *(client.post(f"{API}/authors", json=body, headers=key) for _ in range(20))
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 409}, statuses
        created = [r for r in responses if r.status_code == 201]
        assert created, statuses
        assert len({r.json()["id"] for r in created}) == 1
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "idempotency-key-in-use")
        # A retry after the race gets the one answer.
        retry = await client.post(f"{API}/authors", json=body, headers=key)
        assert retry.json()["id"] == created[0].json()["id"]
    assert await _count(engine, "authors") == 5


async def test_keys_expire_after_24_hours_and_expired_keys_are_purged_by_writes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = _key()
    first = await client.post(f"{API}/authors", json={"name": "Old"}, headers=key)
    async with engine.begin() as conn:
        row = (
            await conn.execute(text("SELECT created_at, expires_at FROM idempotency_keys"))
        ).one()
        assert (row.expires_at - row.created_at).total_seconds() == 24 * 3600
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours',"
                " expires_at = expires_at - interval '25 hours'"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys SELECT scope, 'stale-' || n, fingerprint,"
                " created_at, expires_at, result"
                " FROM idempotency_keys, generate_series(1, 30) AS n"
            )
        )
    # After 24 hours the key is new again: a second author, not a replay.
    later = await client.post(f"{API}/authors", json={"name": "Old"}, headers=key)
    assert later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    # The write purged every expired key; only the fresh one is left.
    async with engine.connect() as conn:
        keys: list[Any] = list(await conn.scalars(text("SELECT key FROM idempotency_keys")))
    assert keys == [key["Idempotency-Key"]]


@pytest.mark.parametrize("bad", ["", "x" * 256, "späť", "two words"])
async def test_a_malformed_key_is_422(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post(
        f"{API}/authors",
        json={"name": "A"},
        headers={b"Idempotency-Key": bad.encode()},
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"][:1] == ["header"]
