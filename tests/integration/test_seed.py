"""``library seed`` on a real database: rows the API serves, and the schema left as it was."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.credit_copies import check_credit_copies
from tests.unit.test_seed import SAMPLE
from tools.seed import CatalogProfile, seed

_SCHEMA = text(
    """
    SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes
    WHERE tablename IN ('authors', 'books', 'book_authors')
    UNION ALL
    SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid::regclass::text IN ('authors', 'books', 'book_authors')
    ORDER BY 1
    """
)


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def _schema(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(await conn.scalars(_SCHEMA))


async def test_a_seeded_catalog_is_served_and_keeps_every_index_and_constraint(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str
) -> None:
    before = await _schema(engine)
    profile = CatalogProfile.from_csv(SAMPLE)
    authors, books = await seed(_dsn(database_url), profile, books=250, seed=3)
    assert (authors, books) == (50, 250)
    assert await _schema(engine) == before
    # The seed loads the books' copies of their credits itself: they are what the triggers
    # would have computed from the credits.
    copies = await check_credit_copies(engine)
    assert (copies.books, copies.stale) == (250, [])
    assert copies.with_coauthors > 0

    page = (await client.get("/api/v1/books", params={"limit": 100})).json()
    assert len(page["items"]) == 100
    assert all(item["authors"] for item in page["items"])
    one = page["items"][0]
    assert (await client.get(f"/api/v1/books/{one['id']}")).json() == one
    # The search document was built too: the book is found by its title and first author.
    words = f"{one['title']} {one['authors'][0]['name']}"
    found = (await client.get("/api/v1/books", params={"q": words, "limit": 100})).json()
    assert one["id"] in {b["id"] for b in found["items"]}


async def test_seeding_a_catalog_that_is_not_empty_needs_replace(
    client: httpx.AsyncClient, database_url: str
) -> None:
    profile = CatalogProfile.from_csv(SAMPLE)
    await seed(_dsn(database_url), profile, books=20, seed=1)
    with pytest.raises(RuntimeError, match="not empty"):
        await seed(_dsn(database_url), profile, books=20, seed=2)
    assert len((await client.get("/api/v1/books", params={"limit": 100})).json()["items"]) == 20

    await seed(_dsn(database_url), profile, books=30, seed=2, replace=True)
    assert len((await client.get("/api/v1/books", params={"limit": 100})).json()["items"]) == 30
