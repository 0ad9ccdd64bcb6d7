"""SIGTERM: the server stops accepting, finishes what is in flight, disposes the engine, exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.auth import bearer
from tests.integration.faults.common import connect, sessions, unique_application_name, wait_for
from tests.integration.faults.server import ServerProcess
from tests.integration.helpers import API

pytestmark = pytest.mark.fault


async def test_sigterm_finishes_the_request_in_flight_then_exits_0(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    name = unique_application_name()
    admin = await connect(database_url)
    try:
        async with (
            ServerProcess(database_url, name, tmp_path / "server.log") as server,
            httpx.AsyncClient(base_url=server.base_url, headers=bearer(), timeout=30) as client,
        ):
            author = (await client.post(f"{API}/authors", json={"name": "Slow"})).json()
            # The test locks the author's row: the app's INSERT INTO book_authors waits for it.
            locking = admin.transaction()
            await locking.start()
            await admin.execute("SELECT 1 FROM authors WHERE id = $1 FOR UPDATE", author["id"])
            in_flight = asyncio.create_task(
                client.post(f"{API}/books", json={"title": "Slow", "author_ids": [author["id"]]})
            )

            async def app_waits_on_the_lock() -> bool:
                rows = await sessions(admin, name)
                return any(row["wait_event_type"] == "Lock" for row in rows)

            await wait_for(app_waits_on_the_lock, what="the app's INSERT to wait on the lock")

            server.signal(signal.SIGTERM)

            async def stopped_accepting() -> bool:
                return not await asyncio.to_thread(server.accepts_connections)

            await wait_for(stopped_accepting, what="the listening socket to close")
            assert server.running(), "it waits for the request in flight"
            assert not in_flight.done()

            await locking.rollback()  # the request in flight may now finish
            response = await in_flight
            assert response.status_code == 201, response.text

            assert await server.wait() == 0, server.output()

            async def engine_disposed() -> bool:
                return not await sessions(admin, name)

            await wait_for(engine_disposed, seconds=5, what="the app's sessions to close")
            events = [
                json.loads(line).get("event")
                for line in server.output().splitlines()
                if line.startswith("{")
            ]
            assert "stopped" in events
        book = await admin.fetchval("SELECT title FROM books WHERE id = $1", response.json()["id"])
        assert book == "Slow"
    finally:
        await admin.close()
