"""The app's own CPU per request, in process: no HTTP server, no wrk, no baseline.

`python -m bench.micro --dsn postgresql://.../bench_library_100000 [--requests N] [--only NAME]`
drives ``create_app()``, configured as `make bench` serves it (production, tokens verified,
rate limits on), through its ASGI interface with 16 concurrent callers against a seeded
bench database and prints, per request shape, the process CPU time per request (the app's
Python plus asyncpg's client side; the server's CPU is in another process). The loopback HTTP
layer (uvicorn, httptools) is not in these figures: they isolate what our code and its
frameworks cost, which is what a change to the request path moves. Run it under
``py-spy record -- python -m bench.micro ...`` for a profile of the same loop.

Noise from other processes changes wall time, not much this process's CPU time, so these
figures hold better on a busy machine than req/s does; `make bench` stays the judge.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.capture import isbn13

CALLERS = 16
SHAPES = ("get_book", "list_50", "list_20", "post_book")


def _scope(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8042"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8042),
        "state": {},
    }


# Sent with every write: a token of the run's own key (see ``production_like``).
_WRITE_HEADERS: list[tuple[bytes, bytes]] = []


def production_like(run_dir: Path) -> None:
    """Configure the app in this process as ``make bench`` serves it: production, JSON logs,
    tokens verified against a key pair of the run's own (writes send one), and rate limits
    that 16 callers can never reach (so the limiter's cost is counted, never a 429).
    ``MICRO_ENVIRONMENT=development`` serves as development instead, for the switches honoured
    there only (e.g. ``LIBRARY_EVENTS_OUTBOX_ENABLED=false``: the outbox's instructions)."""
    from tools import devauth

    key = devauth.new_key_pair(run_dir)
    os.environ.update(
        {
            "LIBRARY_ENVIRONMENT": os.environ.get("MICRO_ENVIRONMENT", "production"),
            "LIBRARY_LOG_FORMAT": "json",
            "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
            "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
            "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
            "LIBRARY_RATE_LIMIT_ANONYMOUS": "10000000/second",
            "LIBRARY_RATE_LIMIT_AUTHENTICATED": "10000000/second",
        }
    )
    token = key.sign("catalog:write", sub="bench", ttl=24 * 3600)
    _WRITE_HEADERS[:] = [(b"authorization", f"Bearer {token}".encode())]


async def _call(app: Any, method: str, target: str, body: bytes = b"") -> int:
    headers = [(b"content-type", b"application/json")] if body else []
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
        headers += _WRITE_HEADERS
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, target, headers), receive, send)
    return status


async def _targets(dsn: str) -> tuple[dict[str, list[str]], list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        ids = [r[0] for r in await conn.fetch("SELECT id::text FROM books ORDER BY id LIMIT 500")]
        authors = [r[0] for r in await conn.fetch("SELECT id::text FROM authors LIMIT 100")]
    finally:
        await conn.close()
    shapes = {
        "get_book": [f"/api/v1/books/{i}" for i in ids],
        "list_50": ["/api/v1/books?limit=50"],
        "list_20": ["/api/v1/books?limit=20"],
        "post_book": ["/api/v1/books"],
    }
    return shapes, authors


_posted = itertools.count()
_NONCE = f"{os.getpid() % 1000:03d}"


def _post_body(authors: list[str]) -> bytes:
    """A new book each time: a unique title and ISBN, two existing authors."""
    n = next(_posted)
    return orjson.dumps(
        {
            "title": f"micro-post {_NONCE}-{n}",
            "author_ids": [authors[n % len(authors)], authors[(n + 1) % len(authors)]],
            "isbn": isbn13(f"979{_NONCE}{n % 1000000:06d}"),
            "publication_year": 2001,
            "language": "en",
        }
    )


async def _measure(
    app: Any, targets: list[str], requests: int, authors: list[str] | None = None
) -> tuple[float, float]:
    per_caller = requests // CALLERS
    expected = 201 if authors else 200

    async def caller(offset: int) -> None:
        for n in range(per_caller):
            target = targets[(offset + n) % len(targets)]
            if authors:
                status = await _call(app, "POST", target, _post_body(authors))
            else:
                status = await _call(app, "GET", target)
            if status != expected:
                raise SystemExit(f"{target}: status {status}")

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller(i * 31) for i in range(CALLERS)))
    done = per_caller * CALLERS
    return (time.process_time() - cpu) * 1000 / done, (time.perf_counter() - wall) * 1000 / done


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--requests", type=int, default=8000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", action="append")
    p.add_argument("--warm", type=int, default=800, help="requests before the measured rounds")
    a = p.parse_args()
    os.environ["LIBRARY_DATABASE_URL"] = a.dsn.replace("postgresql://", "postgresql+asyncpg://")
    with tempfile.TemporaryDirectory() as keys:
        production_like(Path(keys))
        await _run(a)


async def _run(a: argparse.Namespace) -> None:
    from library.bootstrap.app import create_app

    app = create_app()
    shapes, authors = await _targets(a.dsn)  # POST's books are deleted at the end
    async with app.router.lifespan_context(app):
        for name, targets in shapes.items():
            if (a.only and name not in a.only) or (not a.only and name == "post_book"):
                continue  # POST writes rows: only when asked for
            writes = authors if name == "post_book" else None
            await _measure(app, targets, a.warm, writes)  # warm: statements prepared, caches
            cpu = [(await _measure(app, targets, a.requests, writes))[0] for _ in range(a.rounds)]
            print(
                f"{name:10s} cpu ms/req median {statistics.median(cpu):.3f} "
                f"({', '.join(f'{c:.3f}' for c in cpu)})",
                file=sys.__stdout__,
                flush=True,
            )
    if not a.only or "post_book" in a.only:
        # The bench reuses a database only while it holds exactly the books it seeded.
        conn = await asyncpg.connect(a.dsn)
        try:
            await conn.execute("DELETE FROM books WHERE title LIKE 'micro-post %'")
        finally:
            await conn.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
