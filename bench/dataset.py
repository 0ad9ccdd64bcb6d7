"""The benchmark database: seeded once with `library seed`, reused while it still fits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from alembic.config import Config
from alembic.script import ScriptDirectory

from bench.workload import POST_TITLE_PREFIX

ROOT = Path(__file__).resolve().parent.parent


def database_name(books: int) -> str:
    """``bench_library`` for the full million, ``bench_library_<n>`` for other sizes."""
    return "bench_library" if books == 1_000_000 else f"bench_library_{books}"


def head_revisions() -> set[str]:
    """The migrations' head(s) in this checkout."""
    return set(ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads())


async def remove_posted_books(dsn: str) -> int:
    """Delete the books earlier POST scenarios created (their titles carry a prefix)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await _remove_posted_books(conn)
    finally:
        await conn.close()


async def _remove_posted_books(conn: asyncpg.Connection) -> int:
    """Delete the posted books, then vacuum what they left when there were any: without
    autovacuum (this machine's PostgreSQL runs without) their dead rows and the search indexes'
    pending entries stayed, and the next run's rare search ran 4x slower in the database
    (pgbench 2,700 tx/s in one run, 385 in the next, on the same term)."""
    status = await conn.execute("DELETE FROM books WHERE title LIKE $1", POST_TITLE_PREFIX + "%")
    removed = int(status.split()[-1])
    if removed:
        await conn.execute("VACUUM (ANALYZE) books, book_authors")
    return removed


async def _reusable(dsn: str, books: int) -> str | None:
    """None when ``dsn`` holds ``books`` books at the head revision, else why not."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return "no database yet"
    try:
        if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return "not migrated"
        revisions = {
            r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")
        }
        if revisions != head_revisions():
            return f"at revision {sorted(revisions)}, the code is at {sorted(head_revisions())}"
        await _remove_posted_books(conn)
        count = await conn.fetchval("SELECT count(*) FROM books")
        if count != books:
            return f"{count:,} books, not {books:,}"
        return None
    finally:
        await conn.close()


async def ensure(server_dsn: str, books: int, seed: int, name: str | None = None) -> str:
    """The DSN of a database (``name``, by default make bench's) holding ``books`` seeded books
    at the head revision."""
    name = name or database_name(books)
    dsn = f"{server_dsn.rstrip('/')}/{name}"
    why = await _reusable(dsn, books)
    if why is None:
        print(f"Reusing {name}: {books:,} books at the head revision.", flush=True)
        return dsn
    print(f"Seeding {name} ({why}) ...", flush=True)
    admin = await asyncpg.connect(f"{server_dsn.rstrip('/')}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    env = {**os.environ, "DATABASE_URL": dsn, "LIBRARY_DATABASE_URL": dsn}
    library = str(Path(sys.executable).with_name("library"))
    for args in (["migrate"], ["seed", "--books", str(books), "--seed", str(seed)]):
        # Blocking on purpose: nothing else runs while the database is prepared.
        subprocess.run([library, *args], env=env, cwd=ROOT, check=True)  # noqa: S603, ASYNC221
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return dsn
