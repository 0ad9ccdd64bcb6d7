"""`make bench MODE=cluster` (`make bench-cluster`): the scaled-out shapes of docs/scaling.md,
measured on one machine.

``tools.cluster`` starts the whole shape without Docker (the embedded primary, a streaming
replica made by ``pg_basebackup``, PgBouncer in transaction mode); the catalog is seeded on the
primary (``library seed``, 100,000 books by default) and the replica has replayed it before
anything is measured. Then ``library serve`` runs in each shape in turn:

- ``1 worker, direct``: one process on the primary (the reference);
- ``2 workers, direct``;
- ``2 workers, PgBouncer``: every request's transaction through the pooler;
- ``2 workers, replica reads``: GETs on the replica, writes on the primary;
- ``2 workers, PgBouncer + replica``: ``make run-cluster``'s shape.

wrk drives GET one book and list 50 at 16 and 64 connections in each; the figures are the
medians over the rounds of req/s and of wrk's p99. The replica's share is read from its
``pg_stat_database`` (transactions it committed during the shape's runs). On this 2-core
machine every server, PostgreSQL and wrk share the same two CPUs: the shapes are compared with
each other on it, not projected to one machine each (docs/scaling.md does the projection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess  # nosec B404 - our own library command, fixed arguments
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench import workload
from bench.run import RESULTS, ROOT, Config, Driver, _git_commit

SCENARIOS = ("get_book", "list_50")


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    workers: int
    pooler: bool
    replica: bool
    env: dict[str, str] = field(default_factory=dict)


SHAPES = (
    Shape("1 worker, direct", 1, pooler=False, replica=False),
    Shape("2 workers, direct", 2, pooler=False, replica=False),
    Shape("2 workers, PgBouncer", 2, pooler=True, replica=False),
    Shape("2 workers, replica reads", 2, pooler=False, replica=True),
    Shape("2 workers, PgBouncer + replica", 2, pooler=True, replica=True),
)


class _Served:
    """What bench.run's Driver measures: a name, a port, a process (the supervisor)."""

    def __init__(self, name: str, port: int, pid: int) -> None:
        self.name = name
        self.port = port
        self.ps = psutil.Process(pid)


def _args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    p.add_argument("--books", type=int, default=int(env("BENCH_CLUSTER_BOOKS", "100000")))
    p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "2")))
    p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "6")))
    p.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "2")))
    p.add_argument("--connections", default=env("BENCH_CLUSTER_CONNECTIONS", "16,64"))
    p.add_argument("--port", type=int, default=int(env("BENCH_CLUSTER_PORT", "8060")))
    p.add_argument("--shapes", default="", help="comma-separated indexes of SHAPES (default all)")
    return p.parse_args(argv)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _replica_caught_up(primary: str, replica: str, seconds: float = 120) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    source = await asyncpg.connect(primary)
    standby = await asyncpg.connect(replica)
    try:
        target = await source.fetchval("SELECT pg_current_wal_lsn()")
        async with asyncio.timeout(seconds):
            while await standby.fetchval("SELECT pg_last_wal_replay_lsn() < $1", target):  # noqa: ASYNC110 - polling another server
                await asyncio.sleep(0.2)
    finally:
        await source.close()
        await standby.close()


async def _replica_commits(replica: str) -> int:
    conn = await asyncpg.connect(replica)
    try:
        return int(
            await conn.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def _scenarios(dsn: str) -> tuple[int, list[workload.Scenario]]:
    conn = await asyncpg.connect(dsn)
    try:
        total = int(await conn.fetchval("SELECT count(*) FROM books"))
        return total, [s for s in await workload.build(conn, total) if s.name in SCENARIOS]
    finally:
        await conn.close()


def _shape_environment(shape: Shape, cluster: Any, auth: dict[str, str]) -> dict[str, str]:
    """The overrides of ``cluster.app_environment()`` that make ``shape``."""
    env = {
        "LIBRARY_ENVIRONMENT": "production",
        "LIBRARY_LOG_FORMAT": "json",
        "LIBRARY_RATE_LIMIT_ENABLED": "false",  # wrk is one client
        **auth,
    }
    if not shape.pooler:
        env["LIBRARY_DATABASE_URL"] = cluster.primary_url()
        env["LIBRARY_DB_POOLER"] = "none"
        env["LIBRARY_DIRECT_DATABASE_URL"] = ""
    if not shape.replica:
        env["LIBRARY_REPLICA_DATABASE_URL"] = ""
    return env | shape.env


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    from tools import devauth
    from tools.cluster import Cluster

    connections = [int(c) for c in args.connections.split(",")]
    shapes = [SHAPES[int(i)] for i in args.shapes.split(",")] if args.shapes else list(SHAPES)
    started = datetime.now(UTC)
    run_dir = RESULTS / f"cluster-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    key = devauth.new_key_pair(run_dir / "auth")
    auth = {
        "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
        "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
        "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
    }
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "config": {
            "books": args.books,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": connections,
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "commit": _git_commit(),
        },
        "shapes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as root:
        cluster = Cluster(Path(root))
        try:
            print(f"Starting the cluster in {root} ...", flush=True)
            cluster.start()
            owner = cluster.primary_url(cluster.owner)
            print(f"Seeding {args.books:,} books on the primary ...", flush=True)
            subprocess.run(  # noqa: S603 - our own command
                [str(Path(sys.executable).with_name("library")), "seed", "--books",
                 str(args.books), "--seed", "1"],
                env={**os.environ, "DATABASE_URL": owner, "LIBRARY_DATABASE_URL": owner},
                cwd=ROOT, check=True,
            )  # fmt: skip
            primary, replica = _dsn(owner), _dsn(cluster.replica_url(cluster.owner))
            asyncio.run(_analyze_and_wait(primary, replica))
            total, scenarios = asyncio.run(_scenarios(primary))
            results["config"]["books"] = total
            for index, shape in enumerate(shapes):
                results["shapes"][shape.name] = _measure_shape(
                    shape, index, cluster, auth, scenarios, connections, args, run_dir, primary,
                    replica,
                )  # fmt: skip
        finally:
            cluster.stop()
    results["load_average_at_end"] = os.getloadavg()
    text = table(results)
    results["table"] = text
    payload = json.dumps(results, indent=2) + "\n"
    (run_dir / "cluster.json").write_text(payload)
    (RESULTS / "cluster.json").write_text(payload)
    print("\n" + text)
    print(f"\nJSON and logs: {run_dir.relative_to(ROOT)}/; summary: bench/results/cluster.json")


async def _analyze_and_wait(primary: str, replica: str) -> None:
    conn = await asyncpg.connect(primary)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    await _replica_caught_up(primary, replica)


def _measure_shape(
    shape: Shape,
    index: int,
    cluster: Any,
    auth: dict[str, str],
    scenarios: list[workload.Scenario],
    connections: list[int],
    args: argparse.Namespace,
    run_dir: Path,
    primary: str,
    replica: str,
) -> dict[str, Any]:
    from tools.cluster import Api

    port = args.port + index
    api = Api(cluster, port, shape.workers, env=_shape_environment(shape, cluster, auth))
    print(f"\n{shape.name}", flush=True)
    api.start(log_path=run_dir / f"app-{index}.log", timeout=120)
    if api.process is None:
        raise RuntimeError(f"{shape.name}: library serve did not start")
    served = _Served(shape.name, port, api.process.pid)
    commits_before = asyncio.run(_replica_commits(replica))
    measured: dict[str, Any] = {}
    try:
        for scenario in scenarios:
            for conc in connections:
                cfg = Config(
                    0, 1, args.rounds, args.duration, args.warmup, conc, 1, "", primary, port,
                    port, False,
                )  # fmt: skip
                driver = Driver(cfg, run_dir, primary)
                driver.measure(served, scenario, args.warmup)  # type: ignore[arg-type]
                runs = [
                    driver.measure(served, scenario, args.duration)  # type: ignore[arg-type]
                    for _ in range(args.rounds)
                ]
                figure = {
                    "rps_median": statistics.median(r["rps"] for r in runs),
                    "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                    "runs": runs,
                }
                measured[f"{scenario.name}@c{conc}"] = figure
                print(
                    f"  {scenario.title} c{conc}: {figure['rps_median']:8.0f} req/s, "
                    f"p99 {figure['p99_ms_median']:.1f} ms",
                    flush=True,
                )
    finally:
        api.stop()
    commits = asyncio.run(_replica_commits(replica)) - commits_before
    requests = sum(r["requests"] for m in measured.values() for r in m["runs"])
    return {
        "workers": shape.workers,
        "pooler": shape.pooler,
        "replica": shape.replica,
        "figures": measured,
        "replica_commits": commits,
        "requests_measured": requests,
    }


def table(results: dict[str, Any]) -> str:
    cfg = results["config"]
    conns = cfg["connections"]
    head = " | ".join(f"{s} c{c}" for s in ("GET one book", "List 50") for c in conns)
    lines = [
        f"{cfg['books']:,} books on the embedded primary (PostgreSQL 18) with a streaming "
        f"replica and PgBouncer in transaction mode, all on one {cfg['cpus']}-CPU machine; "
        f"{cfg['rounds']} rounds of {cfg['duration_s']} s per figure (medians); load average "
        f"{cfg['load_average_at_start'][0]:.1f} at start, {results['load_average_at_end'][0]:.1f}"
        f" at end; commit {cfg['commit']}. req/s (p99 ms).",
        "",
        f"| Shape | {head} | replica transactions |",
        "| --- |" + " ---: |" * (2 * len(conns)) + " ---: |",
    ]
    for name, shape in results["shapes"].items():
        cells = []
        for scenario in SCENARIOS:
            for c in conns:
                f = shape["figures"].get(f"{scenario}@c{c}")
                cells.append(
                    "-" if f is None else f"{f['rps_median']:,.0f} ({f['p99_ms_median']:.1f})"
                )
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {shape['replica_commits']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
