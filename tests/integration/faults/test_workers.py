"""``library serve --workers 2``: two stateless workers, each with its own pools, and SIGTERM
stops every one of them gracefully (requests in flight answered, pools closed, exit 0)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.auth import bearer
from tests.integration.faults.common import (
    activity,
    connect,
    unique_application_name,
    wait_for,
)
from tests.integration.faults.server import ServerProcess
from tests.integration.helpers import API

pytestmark = pytest.mark.fault


def workers_of(pid: int) -> set[int]:
    """The worker processes of supervisor ``pid`` (Linux): its children started by
    multiprocessing's spawn (not its resource tracker, which outlives the supervisor by a
    moment)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command:
                found.add(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reads_counted(metrics: str) -> int:
    """The GETs of one author counted in a /metrics page."""
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{")
        and 'http_route="/api/v1/authors/{author_id}"' in line
        and 'http_request_method="GET"' in line
    )


async def app_sessions(admin: asyncpg.Connection, name: str) -> list[asyncpg.Record]:
    """The backends of every pool of every worker (the relay's are named ``<name>-relay``)."""
    return await activity(
        admin,
        "SELECT pid, application_name, wait_event_type, wait_event, state, left(query, 60)"
        " AS query FROM pg_stat_activity"
        " WHERE application_name IN ($1, $1 || '-relay')",
        name,
    )


async def test_two_workers_serve_then_sigterm_stops_both_gracefully(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    name = unique_application_name()
    admin = await connect(database_url)
    server = ServerProcess(database_url, name, tmp_path / "server.log")
    server.args = ["--workers", "2"]
    server.env.update(
        LIBRARY_DB_POOL_SIZE="4",
        LIBRARY_DB_READ_POOL_SIZE="2",
        # The writes in flight wait for the test's lock as long as the test needs.
        LIBRARY_DB_LOCK_TIMEOUT_MS="60000",
    )
    try:
        async with (
            server,
            httpx.AsyncClient(base_url=server.base_url, headers=bearer(), timeout=30) as client,
        ):
            assert server.process is not None
            supervisor = server.process.pid

            async def both_workers_up() -> bool:
                return len([pid for pid in workers_of(supervisor) if alive(pid)]) == 2

            await wait_for(both_workers_up, seconds=60, what="two worker processes")
            workers = workers_of(supervisor)

            async def both_workers_ready() -> bool:
                # Each worker's relay holds its LISTEN connection once its start-up is done.
                relays = [r for r in await app_sessions(admin, name) if r[1].endswith("-relay")]
                return len(relays) >= 2

            await wait_for(both_workers_ready, seconds=60, what="both workers' relays")

            author = (await client.post(f"{API}/authors", json={"name": "Many"})).json()
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{API}/books", json={"title": f"B{n}", "author_ids": [author["id"]]}
                    )
                    for n in range(10)
                ),
                *(client.get(f"{API}/authors/{author['id']}") for _ in range(20)),
            )
            assert [r.status_code for r in responses] == [201] * 10 + [200] * 20

            # Whichever worker answers, /metrics counts the requests of both (each worker
            # writes its counts for the others at most a second late: docs/operations.md).
            async def both_workers_counted() -> bool:
                return reads_counted((await client.get("/metrics")).text) == 20

            await wait_for(both_workers_counted, seconds=10, what="both workers' reads counted")
            for _ in range(6):
                assert reads_counted((await client.get("/metrics")).text) == 20

            # Requests in flight at SIGTERM: they wait for a lock the test holds.
            locking = admin.transaction()
            await locking.start()
            await admin.execute("SELECT 1 FROM authors WHERE id = $1 FOR UPDATE", author["id"])
            in_flight = [
                asyncio.create_task(
                    client.post(
                        f"{API}/books", json={"title": f"Late {n}", "author_ids": [author["id"]]}
                    )
                )
                for n in range(4)
            ]

            async def all_wait_on_the_lock() -> bool:
                rows = await app_sessions(admin, name)
                return sum(1 for row in rows if row[2] == "Lock") == 4

            try:
                await wait_for(all_wait_on_the_lock, what="the four writes to wait on the lock")
            except AssertionError as timed_out:
                # Seen now and then on a loaded machine: say what each write and session was
                # doing, for whoever reads the failure.
                answered = [
                    repr(t.exception()) if t.exception() else t.result().status_code
                    for t in in_flight
                    if t.done()
                ]
                sessions = [dict(row) for row in await app_sessions(admin, name)]
                pools = [
                    line
                    for line in (await client.get("/metrics")).text.splitlines()
                    if line.startswith("db_client_connection")
                ]
                raise AssertionError(
                    f"{timed_out}; writes answered {answered}; sessions {sessions}; "
                    f"pools {pools}; "
                    f"server output {server.output()[-3000:]}"
                ) from None

            server.signal(signal.SIGTERM)

            async def stopped_accepting() -> bool:
                # New connections are refused (not left in a backlog no worker serves).
                return not await asyncio.to_thread(server.accepts_connections)

            await wait_for(stopped_accepting, what="the listening socket to close")
            assert server.running(), "the workers wait for the requests in flight"
            await locking.rollback()
            late = await asyncio.gather(*in_flight)
            assert [r.status_code for r in late] == [201] * 4, [r.text for r in late]

            assert await server.wait() == 0, server.output()
            assert not [pid for pid in workers if alive(pid)], "a worker outlived the server"

            async def pools_closed() -> bool:
                return not await app_sessions(admin, name)

            await wait_for(pools_closed, seconds=5, what="every worker's sessions to close")
            events = [
                json.loads(line).get("event")
                for line in server.output().splitlines()
                if line.startswith("{")
            ]
            assert events.count("stopped") == 2, server.output()
        assert await admin.fetchval("SELECT count(*) FROM books") == 14
    finally:
        await admin.close()


async def test_workers_stop_when_their_supervisor_is_killed(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    """A supervisor killed outright (SIGKILL, the OOM killer) cannot stop its workers: each
    asked Linux for a SIGTERM when its parent dies, and stops (no orphan left serving)."""
    server = ServerProcess(database_url, unique_application_name(), tmp_path / "server.log")
    server.args = ["--workers", "2"]
    server.env.update(LIBRARY_DB_POOL_SIZE="2", LIBRARY_DB_READ_POOL_SIZE="2")
    async with server:
        assert server.process is not None
        supervisor = server.process.pid

        async def both_workers_up() -> bool:
            return len([pid for pid in workers_of(supervisor) if alive(pid)]) == 2

        await wait_for(both_workers_up, seconds=60, what="two worker processes")
        workers = workers_of(supervisor)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            assert (await client.get("/health/live")).status_code == 200
        server.signal(signal.SIGKILL)

        async def workers_gone() -> bool:
            return not [pid for pid in workers if alive(pid)]

        await wait_for(workers_gone, seconds=30, what="the orphaned workers to stop")
        assert not await asyncio.to_thread(server.accepts_connections)
        assert await server.wait() == -signal.SIGKILL
