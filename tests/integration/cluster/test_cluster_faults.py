"""Faults of the cluster's parts (docs/operations.md "Read replica"): the replica killed,
PgBouncer restarted, the primary stopped; and `make run-cluster` stopped by Ctrl-C. Each ends
with reads served again; writes are 503 while the primary (or the way to it) is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.cluster.conftest import (
    cluster_app,
    cluster_folder,
    cluster_settings,
    databases,
    eventually,
)
from tests.integration.helpers import API, assert_problem
from tools.cluster import Cluster
from tools.pgbouncer import free_port

pytestmark = pytest.mark.fault


@pytest.fixture
async def http(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with cluster_app(cluster_settings(cluster)) as (_, client):
        yield client


async def _write(http: httpx.AsyncClient, name: str) -> httpx.Response:
    return await http.post(f"{API}/authors", json={"name": name})


async def test_replica_killed_reads_go_to_the_primary(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    created = await _write(http, "Iain M. Banks")
    url = created.headers["Location"]
    assert (await http.get(url)).status_code == 200
    try:
        cluster.kill_replica()
        # At once, before the tracker has noticed: the read meets the dead replica, and the
        # primary answers it.
        for _ in range(20):
            assert (await http.get(url, headers={"Commit-LSN": "0/0"})).status_code == 200
        assert (await http.get(f"{API}/authors")).status_code == 200

        async def replica_down() -> bool:
            return bool((await databases(http))["replica"]["state"] == "down")

        await eventually(replica_down)
        ready = await http.get("/health/ready")
        assert ready.status_code == 200  # degraded: the primary serves
        assert (await _write(http, "Written while the replica is down")).status_code == 201
    finally:
        cluster.start_replica()

    async def replica_up() -> bool:
        return bool((await databases(http))["replica"]["state"] == "up")

    await eventually(replica_up, seconds=30)
    assert (await http.get(url)).status_code == 200


async def test_pgbouncer_restarted_reads_and_writes_are_served_again(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    assert (await _write(http, "Before the restart")).status_code == 201
    try:
        cluster.stop_pgbouncer()
        refused = await _write(http, "While PgBouncer is down")
        assert_problem(refused, 503)
        # Reads do not go through the pooler: the replica serves them.
        assert (await http.get(f"{API}/authors", headers={"Commit-LSN": "0/0"})).status_code == 200
    finally:
        cluster.start_pgbouncer()

    async def written() -> bool:
        return (await _write(http, "After the restart")).status_code == 201

    await eventually(written, seconds=30)
    created = await _write(http, "Read after the restart")
    assert (await http.get(created.headers["Location"])).status_code == 200


async def test_primary_stopped_writes_are_503_then_served_after_its_restart(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    before = await _write(http, "Before the primary stops")
    url = before.headers["Location"]
    try:
        cluster.stop_primary()
        refused = await _write(http, "While the primary is down")
        body = assert_problem(refused, 503)
        assert body["status"] == 503
        assert refused.headers["content-type"] == "application/problem+json"
        not_ready = await http.get("/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["databases"][0]["state"] == "down"
    finally:
        cluster.start_primary()

    async def written() -> bool:
        return (await _write(http, "After the primary's restart")).status_code == 201

    await eventually(written, seconds=60)
    assert (await http.get(url)).status_code == 200

    async def replica_up() -> bool:
        return bool((await databases(http))["replica"]["state"] == "up")

    await eventually(replica_up, seconds=30)
    created = await _write(http, "Read back after the restart")
    assert (await http.get(created.headers["Location"])).status_code == 200


@pytest.fixture
def tmp_folder() -> Iterator[Path]:
    yield from cluster_folder()


@pytest.mark.slow
def test_run_cluster_starts_everything_and_ctrl_c_leaves_no_process(tmp_folder: Path) -> None:
    """`make run-cluster` (python -m tools.cluster): the API answers on its port with two
    workers, reading from the replica; SIGINT stops every process it started."""
    tmp_path = tmp_folder
    port = free_port()
    output = (tmp_path / "run-cluster.log").open("wb")
    command = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "tools.cluster", "--root", str(tmp_path / "c"), "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIBRARY_LOG_LEVEL": "WARNING"},
    )
    try:
        deadline = time.monotonic() + 120
        log = tmp_path / "run-cluster.log"
        while "Press Ctrl-C" not in log.read_text(errors="replace"):
            assert command.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        printed = log.read_text(errors="replace")
        for part in ("primary", "replica", "pgbouncer", "api", "export TOKEN="):
            assert part in printed
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()
        assert [d["name"] for d in ready["databases"]] == ["primary", "replica"]
        assert ready["databases"][0]["path"] == "pooler"
        started = psutil.Process(command.pid).children(recursive=True)
        servers = [
            psutil.Process(int((tmp_path / "c" / name / "postmaster.pid").read_text().split()[0]))
            for name in ("primary", "replica")
        ]
        everything = [*started, *servers, *(s.children(recursive=True) for s in servers)]
        processes = [
            p for group in everything for p in (group if isinstance(group, list) else [group])
        ]
        (supervisor,) = [p for p in started if "library.cli" in " ".join(p.cmdline())]
        workers = [p for p in supervisor.children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        assert any("pgbouncer" in p.name() for p in started)
        command.send_signal(signal.SIGINT)
        assert command.wait(90) == 0
        _, alive = psutil.wait_procs(processes, timeout=10)
        assert not alive, [(p.pid, p.name()) for p in alive]
    finally:
        if command.poll() is None:
            # A failed check: stop it as Ctrl-C would (its servers run in sessions of their
            # own, so killing the command alone would leave them running), then force.
            left = psutil.Process(command.pid).children(recursive=True)
            command.send_signal(signal.SIGINT)
            try:
                command.wait(90)
            except subprocess.TimeoutExpired:
                command.kill()
                command.wait()
            for process in left:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        output.close()
