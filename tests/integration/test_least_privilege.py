"""Least privilege: the server's role reads and writes rows; it cannot change the schema."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from shared.persistence.reads import ReadPool
from tests.integration.helpers import API, create_author
from tests.integration.postgres import connect_url

DDL = [
    "DROP TABLE books",
    "DROP TABLE idempotency_keys",
    "ALTER TABLE books ADD COLUMN stolen text",
    "ALTER TABLE authors DROP CONSTRAINT IF EXISTS authors_pkey CASCADE",
    "CREATE TABLE stolen (id int)",
    "CREATE INDEX stolen_ix ON books (title)",
    "CREATE FUNCTION stolen() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "TRUNCATE books CASCADE",
    "CREATE SCHEMA stolen",
    "CREATE ROLE stolen",
    "ALTER TABLE alembic_version RENAME TO stolen",
]


@pytest.mark.parametrize("statement", DDL)
async def test_the_servers_role_cannot_change_the_schema(
    app_database_url: str, statement: str
) -> None:
    conn = await connect_url(make_url(app_database_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
        is_super = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert is_super is False
    finally:
        await conn.close()


async def test_the_app_connects_as_that_role_and_still_reads_and_writes(
    app_database_url: str, read_pool: ReadPool, client: httpx.AsyncClient
) -> None:
    role = make_url(app_database_url).username
    async with read_pool.connection() as connection:
        assert await connection.fetchval("SELECT current_user") == role
    author = await create_author(client, "Least Privilege")
    response = await client.patch(
        f"{API}/authors/{author['id']}", json={"bio": "b"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200
    book = await client.post(
        f"{API}/books",
        json={"title": "Rows only", "author_ids": [author["id"]]},
        headers={"Idempotency-Key": "least-privilege-1"},
    )
    assert book.status_code == 201
    deleted = await client.delete(f"{API}/books/{book.json()['id']}", headers={"If-Match": "*"})
    assert deleted.status_code == 204
    assert (await client.get("/health/ready")).status_code == 200
