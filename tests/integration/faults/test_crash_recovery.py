"""No acknowledged write is lost, none is doubled: SIGKILL the server under a load of creates.

Clients retry each create with the same Idempotency-Key and body until they get an answer (a
dropped connection, a refused one while the server is down, a 503 or a 409 "still running" all
mean: try again). The server is killed several times and started again.
"""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth import bearer
from tests.integration.faults.common import connect, unique_application_name, wait_for
from tests.integration.faults.server import ServerProcess
from tests.integration.helpers import API

pytestmark = pytest.mark.fault

CLIENTS = 8
CREATES_PER_CLIENT = 10
KILLS = 3
RETRYABLE = {409, 503}  # 409: the first attempt with this key is still running


async def create_until_answered(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    attempts: list[int],
    in_flight: list[int],
) -> dict[str, Any]:
    """POST with one Idempotency-Key until a definite answer; the created resource."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    for retry in range(1000):
        attempts[0] += 1
        in_flight[0] += 1
        try:
            response = await client.post(path, json=body, headers=headers)
        except httpx.TransportError:
            response = None
        finally:
            in_flight[0] -= 1
        if response is not None and response.status_code not in RETRYABLE:
            assert response.status_code == 201, response.text
            created: dict[str, Any] = response.json()
            return created
        await asyncio.sleep(min(0.05 * 2**retry, 0.5))  # back off while the server is down
    raise AssertionError(f"no answer for {body}")


async def test_acknowledged_creates_survive_sigkill_exactly_once(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    name = unique_application_name()
    server = ServerProcess(database_url, name, tmp_path / "server.log")
    rng = random.Random(4)
    attempts, in_flight = [0], [0]
    acknowledged: dict[str, dict[str, Any]] = {}  # the unique title or name -> the resource
    async with (
        server,
        httpx.AsyncClient(base_url=server.base_url, headers=bearer(), timeout=20) as client,
    ):
        author = (await client.post(f"{API}/authors", json={"name": "Credited"})).json()

        async def one_client(number: int) -> None:
            for i in range(CREATES_PER_CLIENT):
                label = f"client {number} create {i}"
                if i % 2:
                    path, body = f"{API}/books", {"title": label, "author_ids": [author["id"]]}
                else:
                    path, body = f"{API}/authors", {"name": label}
                acknowledged[label] = await create_until_answered(
                    client, path, body, attempts, in_flight
                )

        async def killer() -> None:
            async def busy() -> bool:
                return in_flight[0] >= CLIENTS // 2

            for _ in range(KILLS):
                await wait_for(busy, seconds=120, what="writes in flight")  # kill it busy
                await asyncio.sleep(rng.uniform(0, 0.3))
                server.signal(signal.SIGKILL)
                assert await server.wait() == -signal.SIGKILL
                await server.start()

        clients = asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
        await asyncio.gather(clients, killer())

        # Every acknowledged create is readable, as acknowledged.
        for label, resource in acknowledged.items():
            kind = "books" if "title" in resource else "authors"
            response = await client.get(f"{API}/{kind}/{resource['id']}")
            assert response.status_code == 200, (label, response.text)
            assert response.json()["title" if kind == "books" else "name"] == label

    assert len(acknowledged) == CLIENTS * CREATES_PER_CLIENT
    assert attempts[0] > len(acknowledged), "the kills made clients retry"
    admin = await connect(database_url)
    try:
        # Exactly one row per create, however many times it was retried.
        titles = await admin.fetch("SELECT title, count(*) AS n FROM books GROUP BY title")
        names = await admin.fetch(
            "SELECT name, count(*) AS n FROM authors WHERE name <> 'Credited' GROUP BY name"
        )
    finally:
        await admin.close()
    rows = {row[0]: row["n"] for row in [*titles, *names]}
    assert rows == dict.fromkeys(acknowledged, 1)
