"""Reads from the streaming replica, writes to the primary through PgBouncer, and
read-your-writes with Commit-LSN (docs/operations.md "Read replica")."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from shared.kernel.consistency import parse_lsn
from tests.integration.cluster.conftest import (
    cluster_app,
    cluster_settings,
    databases,
    eventually,
    owner_connection,
)
from tests.integration.helpers import API, assert_problem
from tools.cluster import Cluster

ROUNDS = 1000


@pytest.fixture
async def http(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with cluster_app(cluster_settings(cluster)) as (_, client):
        yield client


async def _author_scans(conn: asyncpg.Connection) -> tuple[int, int]:
    """(scans of authors, transactions committed) as this server counted them: index and
    sequential scans both (a table of one page, once analyzed, is read whole)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    scans = await conn.fetchval(
        "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables "
        "WHERE relname = 'authors'"
    )
    commits = await conn.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(scans), int(commits)


async def test_health_lists_the_primary_through_the_pooler_and_the_replica(
    http: httpx.AsyncClient,
) -> None:
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["revision"]
    assert body["databases"][0] == {
        "name": "primary",
        "role": "primary",
        "path": "pooler",
        "state": "up",
        "lag_ms": None,
    }
    replica = body["databases"][1]
    assert {k: replica[k] for k in ("name", "role", "path", "state")} == {
        "name": "replica",
        "role": "replica",
        "path": "direct",
        "state": "up",
    }
    assert isinstance(replica["lag_ms"], float | int)
    assert 0 <= replica["lag_ms"] <= 1000


async def test_a_write_answers_its_commit_lsn_and_a_malformed_one_is_a_400(
    http: httpx.AsyncClient,
) -> None:
    created = await http.post(f"{API}/authors", json={"name": "Octavia E. Butler"})
    assert created.status_code == 201
    assert parse_lsn(created.headers["Commit-LSN"]) > 0
    for bad in ("yesterday", "0/", "1/2/3", "G/0", "123456789/0", ""):
        answer = await http.get(f"{API}/authors", headers={"Commit-LSN": bad})
        body = assert_problem(answer, 400)
        assert "Commit-LSN" in body["detail"]
        assert body["type"] == "urn:library:problem:invalid-commit-lsn"
    # A replay of an Idempotency-Key's write, an update and a removal answer one too, each at
    # or past the one before.
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await http.post(f"{API}/authors", json={"name": "Becky Chambers"}, headers=key)
    again = await http.post(f"{API}/authors", json={"name": "Becky Chambers"}, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    url = first.headers["Location"]
    changed = await http.patch(url, json={"bio": "Wayfarers"}, headers={"If-Match": '"1"'})
    removed = await http.delete(url, headers={"If-Match": '"2"'})
    assert removed.status_code == 204
    positions = [
        parse_lsn(r.headers["Commit-LSN"]) for r in (created, first, again, changed, removed)
    ]
    assert positions == sorted(positions)
    # Refused writes carry none.
    refused = await http.post(f"{API}/authors", json={"name": ""})
    assert refused.status_code == 422
    assert "commit-lsn" not in refused.headers


@pytest.mark.slow
async def test_reads_are_served_by_the_replica_and_writes_by_the_primary(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    created = await http.post(f"{API}/authors", json={"name": "N. K. Jemisin"})
    author = created.json()["id"]
    replica = await owner_connection(cluster.replica_url())
    primary = await owner_connection(cluster.primary_url())
    try:
        # Counters are flushed by each backend within a second of going idle.
        await eventually(lambda: _settled(replica, primary))
        replica_before, primary_before = await _author_scans(replica), await _author_scans(primary)
        for _ in range(200):
            assert (await http.get(f"{API}/authors/{author}")).status_code == 200

        async def counted() -> bool:
            replica_after = await _author_scans(replica)
            return replica_after[0] - replica_before[0] >= 200

        await eventually(counted)
        replica_after, primary_after = await _author_scans(replica), await _author_scans(primary)
        assert replica_after[1] - replica_before[1] >= 200  # pg_stat_database: its transactions
        assert primary_after[0] - primary_before[0] < 20  # none of the reads went there
    finally:
        await replica.close()
        await primary.close()


async def _settled(*conns: asyncpg.Connection) -> bool:
    first = [await _author_scans(c) for c in conns]
    await asyncio.sleep(1.2)
    return [(await _author_scans(c))[0] for c in conns] == [f[0] for f in first]


@pytest.mark.slow
async def test_read_your_writes_a_thousand_times(cluster: Cluster, http: httpx.AsyncClient) -> None:
    """Each write is read at once, with the Commit-LSN it answered: always seen, and the
    replica serves those reads (its own counters grow with them)."""
    replica = await owner_connection(cluster.replica_url())
    try:
        before = await _author_scans(replica)
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:
                created = await http.post(f"{API}/authors", json={"name": f"Author {round_}"})
                assert created.status_code == 201, created.text
                url = created.headers["Location"]
                expected_version = 1
            else:
                changed = await http.patch(
                    url, json={"bio": f"round {round_}"}, headers={"If-Match": '"1"'}
                )
                assert changed.status_code == 200, changed.text
                expected_version = 2
            seen = await http.get(url)  # the hook sends the write's Commit-LSN
            assert seen.status_code == 200, (round_, seen.text)
            assert seen.json()["version"] == expected_version, round_

        async def replica_served() -> bool:
            after = await _author_scans(replica)
            # Most reads by far (each PATCH reads its author on the primary, in its write).
            return after[0] - before[0] >= ROUNDS * 0.9

        await eventually(replica_served)
    finally:
        await replica.close()


async def test_a_lagging_replica_sends_reads_to_the_primary(cluster: Cluster) -> None:
    settings = cluster_settings(cluster, replica_max_lag_ms=300)
    replica = await owner_connection(cluster.replica_url())
    try:
        async with cluster_app(settings) as (_, http):
            assert (await databases(http))["replica"]["state"] == "up"
            await replica.execute("SELECT pg_wal_replay_pause()")
            created = await http.post(f"{API}/authors", json={"name": "Ted Chiang"})
            url = created.headers["Location"]

            async def lagging() -> bool:
                return bool((await databases(http))["replica"]["state"] == "lagging")

            await eventually(lagging)
            ready = await http.get("/health/ready")
            assert ready.status_code == 200  # degraded, not unready
            # Without its Commit-LSN (another client): the primary answers, not the stale replica.
            # (The replica has not replayed the author: only the primary can answer 200.)
            anyone = await http.get(url, headers={"Commit-LSN": "0/0"})
            assert anyone.status_code == 200
            await replica.execute("SELECT pg_wal_replay_resume()")

            async def caught_up() -> bool:
                return bool((await databases(http))["replica"]["state"] == "up")

            await eventually(caught_up)
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()


async def test_a_read_waits_for_the_replica_then_reads_the_primary(cluster: Cluster) -> None:
    """Replay paused: a read with the write's Commit-LSN cannot be served by the replica; it
    waits LIBRARY_REPLICA_WAIT_MS, then the primary answers it (never a 404 for a write the
    client saw succeed)."""
    settings = cluster_settings(cluster, replica_max_lag_ms=60_000, replica_wait_ms=100)
    replica = await owner_connection(cluster.replica_url())
    try:
        async with cluster_app(settings) as (_, http):
            await replica.execute("SELECT pg_wal_replay_pause()")
            created = await http.post(f"{API}/authors", json={"name": str(uuid.uuid4())})
            seen = await http.get(created.headers["Location"])
            assert seen.status_code == 200
            # Without the header (the hook adds it unless one is given): the replica, stale.
            stale = await http.get(created.headers["Location"], headers={"Commit-LSN": "0/0"})
            assert stale.status_code == 404
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()
