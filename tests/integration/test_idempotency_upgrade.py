"""Migration 0011 and the keys already stored: a client retrying across the deploy (or the
rollback) within the key's 24 hours gets its original resource, not a second one.

Before 0011 a key stored the HTTP response (status, body, headers); from 0011 on, the use case's
result. Each test runs on a database of its own, migrated to 0010, given keys as the previous
release stored them, then migrated up (and down).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from library.authors.api.schemas import AuthorCreate
from library.books.api.schemas import BookCreate
from library.bootstrap.app import create_app
from shared.settings import Settings
from shared.web.api import RequestModel
from tests.auth import bearer
from tests.integration.conftest import _container, alembic_config
from tests.integration.helpers import API
from tests.integration.postgres import Server

BEFORE = "0010"
OWNER = hashlib.sha256(b"tester").hexdigest()[:32]  # the scope's digest of the tests' sub
AUTHOR_ID = "0b6f4f0e-6a9e-4a55-9d0c-6f2d1c1e2a01"
BOOK_ID = "7d1c3a52-3f6e-4f0b-8a43-2b9e5d0c4f10"
# A book as the previous release answered it and stored it: compact JSON, the API's field order.
BOOK_REQUEST = {
    "title": 'Les Misérables: "l\'intégrale" \\ 😀',
    "author_ids": [AUTHOR_ID, "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"],
    "isbn": "978-0-14-044430-8",
    "publication_year": 1862,
    "language": "fra",
}
BOOK_BODY = json.dumps(
    {
        "id": BOOK_ID,
        "title": BOOK_REQUEST["title"],
        "authors": [
            {"id": AUTHOR_ID, "name": "Victor Hugo"},
            {"id": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "name": "Zoë\tO'Brien"},
        ],
        "isbn13": "9780140444308",
        "publication_year": 1862,
        "language": "fr",
        "created_at": "2026-12-01T10:00:00.123456Z",
        "updated_at": "2026-12-01T10:00:00.123456Z",
        "version": 1,
    },
    ensure_ascii=False,
    separators=(",", ":"),
)
AUTHOR_REQUEST = {"name": "Victor Hugo", "birth_year": 1802, "death_year": 1885}
AUTHOR_BODY = json.dumps(
    {
        "id": AUTHOR_ID,
        "name": "Victor Hugo",
        "birth_year": 1802,
        "death_year": 1885,
        "bio": None,
        "created_at": "2026-12-01T09:00:00Z",
        "updated_at": "2026-12-01T09:00:00Z",
        "version": 1,
    },
    separators=(",", ":"),
)


def _fingerprint(body: RequestModel) -> str:
    # As shared.web.http.idempotency hashes a validated body.
    canonical = json.dumps(body.values(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored_before(key: str) -> list[dict[str, Any]]:
    """The rows the previous release stored for a book and an author created with ``key``."""
    return [
        {
            "scope": f"POST {API}/books {OWNER}",
            "key": key,
            "fingerprint": _fingerprint(BookCreate.model_validate(BOOK_REQUEST)),
            "status": 201,
            "body": BOOK_BODY,
            "headers": {"Location": f"{API}/books/{BOOK_ID}", "ETag": '"1"'},
        },
        {
            "scope": f"POST {API}/authors {OWNER}",
            "key": key,
            "fingerprint": _fingerprint(AuthorCreate.model_validate(AUTHOR_REQUEST)),
            "status": 201,
            "body": AUTHOR_BODY,
            "headers": {"Location": f"{API}/authors/{AUTHOR_ID}", "ETag": '"1"'},
        },
    ]


@pytest.fixture
def database(postgres_server: Server) -> Iterator[str]:
    """A database of its own, at the revision before 0011."""
    name = postgres_server.migrations_database
    postgres_server.recreate_database(name)
    url = postgres_server.database_url(name)
    command.upgrade(alembic_config(url), BEFORE)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database, poolclass=pool.NullPool)
    yield engine
    await engine.dispose()


async def _store_before(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, headers,"
                " created_at, expires_at) VALUES (:scope, :key, :fingerprint, :status, :body,"
                " CAST(:headers AS jsonb), now() - interval '1 hour', now() + interval '23 hours')"
            ),
            [{**row, "headers": json.dumps(row["headers"])} for row in rows],
        )


async def _stored(engine: AsyncEngine) -> dict[tuple[str, str], tuple[int, str, dict[str, str]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT scope, key, status, body, headers FROM idempotency_keys")
        )
        return {(r.scope, r.key): (r.status, r.body, r.headers) for r in rows}


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def _migrate(step: Callable[[Config, str], None], database: str, revision: str) -> None:
    # In a thread: the migrations' env runs an event loop of its own.
    await asyncio.to_thread(step, alembic_config(database), revision)


@asynccontextmanager
async def _client(database: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app, lifespan included, on this database; a client with the tests' token."""
    tuned = settings.model_copy(update={"database_url": SecretStr(database)})
    application: FastAPI = create_app(container=_container(tuned))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as client:
            yield client


async def test_a_key_stored_before_the_upgrade_replays_its_original_answer_after_it(
    database: str, engine: AsyncEngine, settings: Settings
) -> None:
    await _store_before(engine, _stored_before("before-the-deploy"))
    await _migrate(command.upgrade, database, "head")
    key = {"Idempotency-Key": "before-the-deploy"}
    async with _client(database, settings) as client:
        book = await client.post(f"{API}/books", json=BOOK_REQUEST, headers=key)
        author = await client.post(f"{API}/authors", json=AUTHOR_REQUEST, headers=key)
        other = await client.post(f"{API}/authors", json={"name": "Someone else"}, headers=key)
    # The first answers again, byte for byte, and nothing is created.
    assert book.status_code == 201, book.text
    assert book.content == BOOK_BODY.encode()
    assert book.headers["location"] == f"{API}/books/{BOOK_ID}"
    assert book.headers["etag"] == '"1"'
    assert book.headers["content-type"] == "application/json"
    assert book.headers["idempotent-replayed"] == "true"
    assert author.status_code == 201, author.text
    assert author.content == AUTHOR_BODY.encode()
    assert author.headers["location"] == f"{API}/authors/{AUTHOR_ID}"
    assert author.headers["idempotent-replayed"] == "true"
    assert (await _count(engine, "books"), await _count(engine, "authors")) == (0, 0)
    # The key still belongs to its first request.
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")


async def test_the_downgrade_gives_the_previous_release_the_responses_it_would_have_stored(
    database: str, engine: AsyncEngine, settings: Settings
) -> None:
    before = _stored_before("before-the-deploy")
    await _store_before(engine, before)
    await _migrate(command.upgrade, database, "head")
    key = {"Idempotency-Key": "after-the-deploy"}
    async with _client(database, settings) as client:
        author = await client.post(
            f"{API}/authors",
            json={
                "name": 'Zoë "Z" O\'Brien \\ 😀',
                "birth_year": -50,
                "bio": "Line one\nline\ttwo",
            },
            headers=key,
        )
        book = await client.post(
            f"{API}/books",
            json={"title": "Après", "author_ids": [author.json()["id"]], "isbn": "0-14-044430-0"},
            headers=key,
        )
    assert (author.status_code, book.status_code) == (201, 201), book.text
    await _migrate(command.downgrade, database, BEFORE)
    stored = await _stored(engine)
    # The keys stored before the upgrade, exactly as they were...
    for row in before:
        assert stored[(row["scope"], row["key"])] == (201, row["body"], row["headers"])
    # ...and those stored after it, as the previous release stores a response: the same bytes.
    for response, path in ((author, "authors"), (book, "books")):
        status, body, headers = stored[(f"POST {API}/{path} {OWNER}", "after-the-deploy")]
        assert (status, body.encode()) == (201, response.content)
        assert headers == {
            "Location": response.headers["location"],
            "ETag": response.headers["etag"],
        }
