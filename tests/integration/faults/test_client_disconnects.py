"""Clients that give up mid-request leak nothing: no checked-out connection, no open transaction.

Two ways to give up: over real HTTP against uvicorn (the socket closed at a random moment,
sometimes before the body is complete), and in process, where the request's task itself is
cancelled at a random await (what an ASGI server does on shutdown or a timeout middleware does).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from shared.settings import Settings
from tests.integration.faults.common import (
    app_servers,
    sessions,
    unique_application_name,
    wait_for,
)
from tests.integration.helpers import API, create_author, running_app
from tests.integration.postgres import Server

pytestmark = pytest.mark.fault

REQUESTS = 500
CONCURRENCY = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def random_request(
    rng: random.Random, author_ids: list[str]
) -> tuple[str, str, Any, dict[str, str]]:
    """One of the app's reads or writes: method, path, JSON body (or None), headers."""
    kind = rng.randrange(5)
    # Half the creates carry an Idempotency-Key (its lock and row share the write's transaction).
    key = {"Idempotency-Key": f"k-{rng.random()}"} if rng.random() < 0.5 else {}
    if kind == 0:
        return "POST", f"{API}/authors", {"name": f"Author {rng.random()}"}, key
    if kind == 1:
        authors = rng.sample(author_ids, 2)
        body = {"title": f"Book {rng.random()}", "author_ids": authors}
        return "POST", f"{API}/books", body, key
    if kind == 2:
        path = f"{API}/authors/{rng.choice(author_ids)}"
        return "PATCH", path, {"bio": f"{rng.random()}"}, {"If-Match": "*"}
    if kind == 3:
        return "GET", f"{API}/books?limit=50&sort=-title", None, {}
    return "GET", f"{API}/authors/{rng.choice(author_ids)}/books", None, {}


def engine_of(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.container.engine()
    return engine


async def assert_nothing_leaked(
    app: FastAPI, server: Server, database_url: str, application_name: str
) -> None:
    """No pooled connection checked out (write pool or read pool), no session of the app in (or
    idle in) a transaction (with TEST_CLUSTER=1: PgBouncer's server connections on the primary
    and the read pool's on the replica)."""
    pool = engine_of(app).pool
    assert isinstance(pool, QueuePool)
    reads = app.state.container.read_pool()

    async with app_servers(server, database_url) as admins:

        async def app_states() -> list[str]:
            return [
                row["state"] for admin in admins for row in await sessions(admin, application_name)
            ]

        async def settled() -> bool:
            if pool.checkedout() or reads.usage()[0]:
                return False
            # A connection discarded while it was being set up may leave its backend finishing
            # the setup query for a moment after the client closed the socket.
            return set(await app_states()) <= {"idle"}

        # A request whose client left may still be finishing its work: give it a moment. A
        # leak is still there after it, and the assertions below name it.
        with contextlib.suppress(AssertionError):
            await wait_for(settled, seconds=10, what="every connection back in the pool, idle")
        gc.collect()  # a connection dropped without being returned would warn (an error here)
        states = await app_states()
    assert pool.checkedout() == 0, "a write connection was never returned"
    used, _, read_max, _ = reads.usage()
    assert used == 0, "a read connection was never returned"
    assert "idle in transaction" not in states, states
    assert "idle in transaction (aborted)" not in states, states
    assert "active" not in states, states
    assert len(states) <= pool.size() + max(pool.overflow(), 0) + read_max


async def still_serves(client: httpx.AsyncClient, author_ids: list[str]) -> None:
    created = await client.post(f"{API}/books", json={"title": "After", "author_ids": author_ids})
    assert created.status_code == 201, created.text
    assert (await client.get(f"{API}/books")).status_code == 200


@contextlib.asynccontextmanager
async def uvicorn_serving(app: FastAPI) -> AsyncIterator[int]:
    """``app`` behind a real uvicorn HTTP server in this event loop; yields the port."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await serving


async def typical_latency(client: httpx.AsyncClient, author_ids: list[str]) -> float:
    """The slowest of a few complete requests: the window in which to hang up."""
    rng = random.Random(0)
    slowest = 0.0
    for _ in range(10):
        method, path, body, headers = random_request(rng, author_ids)
        started = time.perf_counter()
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code < 300, response.text
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


async def give_up_midway(
    port: int,
    request: tuple[str, str, Any, dict[str, str]],
    rng: random.Random,
    window: float,
) -> bool:
    """Send (part of) a request, wait a random moment, close the socket; True if answered."""
    method, path, body, headers = request
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    raw = head + payload
    # Most requests are sent whole; some are cut inside the body (the app waits for the rest).
    cut = len(raw) if rng.random() < 0.8 or not payload else rng.randrange(len(head), len(raw))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw[:cut])
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rng.uniform(0, window)):
                return bool(await reader.read(1))
        return False
    finally:
        writer.transport.abort()  # a reset, as when a client process dies


async def mixed_batches(
    batch: Callable[[float], Awaitable[list[bool]]], window: float, what: str
) -> None:
    """Run ``batch(window)`` (REQUESTS requests, each given up at a random moment in the window)
    until some requests finished and some were given up: the moments caught every stage.

    The window comes from warm requests; on a loaded machine, or a server whose new connections
    cost more (a container behind a proxy, with password authentication), none may finish in
    it: then it is widened, at most twice (narrowed if all finished).
    """
    for _ in range(3):
        outcomes = await batch(window)
        print(f"window {window:.3f} s: {sum(outcomes)} of {REQUESTS} {what}")
        if 0 < sum(outcomes) < REQUESTS:
            return
        window = window * 4 if sum(outcomes) == 0 else window / 4
    raise AssertionError(f"{sum(outcomes)} of {REQUESTS} {what} in every window tried")


async def test_clients_hanging_up_over_http_leak_no_connection(
    settings: Settings, postgres_server: Server, database_url: str, clean_database: None
) -> None:
    name = unique_application_name()
    app_settings = settings.model_copy(update={"db_application_name": name, "db_pool_size": 5})
    rng = random.Random(5)
    async with running_app(app_settings) as (app, client):
        author_ids = [(await create_author(client, f"A{i}"))["id"] for i in range(4)]
        async with uvicorn_serving(app) as port:
            window = await typical_latency(client, author_ids) * CONCURRENCY / 2
            gate = asyncio.Semaphore(CONCURRENCY)

            async def batch(window: float) -> list[bool]:
                async def one() -> bool:
                    async with gate:
                        return await give_up_midway(
                            port, random_request(rng, author_ids), rng=rng, window=window
                        )

                return await asyncio.gather(*(one() for _ in range(REQUESTS)))

            # The moments were random enough to catch requests at every stage.
            await mixed_batches(batch, window, "answered")
            await assert_nothing_leaked(app, postgres_server, database_url, name)
        await still_serves(client, author_ids[:2])


async def test_requests_cancelled_at_random_awaits_leak_no_connection(
    settings: Settings, postgres_server: Server, database_url: str, clean_database: None
) -> None:
    name = unique_application_name()
    app_settings = settings.model_copy(update={"db_application_name": name, "db_pool_size": 5})
    rng = random.Random(7)
    async with running_app(app_settings) as (app, client):
        author_ids = [(await create_author(client, f"A{i}"))["id"] for i in range(4)]
        window = await typical_latency(client, author_ids) * CONCURRENCY / 2
        gate = asyncio.Semaphore(CONCURRENCY)

        async def batch(window: float) -> list[bool]:
            async def one() -> bool:
                method, path, body, headers = random_request(rng, author_ids)
                async with gate:
                    # httpx runs the app in the calling task: the timeout cancels the app itself.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(rng.uniform(0, window)):
                            await client.request(method, path, json=body, headers=headers)
                            return True
                    return False

            return await asyncio.gather(*(one() for _ in range(REQUESTS)))

        await mixed_batches(batch, window, "completed")
        await assert_nothing_leaked(app, postgres_server, database_url, name)
        await still_serves(client, author_ids[:2])
