"""`make bench`: seed or reuse the database, capture the app's SQL, start the app and the
baseline, drive both with wrk in interleaved rounds, run pgbench on the same SQL, report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
import psutil

from bench import dataset, pgbench, report, workload
from bench.capture import capture

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WRK = ROOT / "bench" / "wrk"
FULL_SIZE = 1_000_000


@dataclass(frozen=True, slots=True)
class Config:
    """How big and how long; every field has a BENCH_* environment variable."""

    books: int
    seed: int
    rounds: int
    duration: int
    warmup: int
    connections: int
    threads: int
    server: str
    database_url: str | None
    app_port: int
    baseline_port: int
    pgbench: bool

    @classmethod
    def from_args(cls, argv: list[str] | None) -> Config:
        env = os.environ.get
        p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
        p.add_argument("--books", type=int, default=int(env("BENCH_BOOKS", "1000000")))
        p.add_argument("--seed", type=int, default=int(env("BENCH_SEED", "1")))
        p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "5")))
        p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "8")))
        p.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")))
        p.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")))
        p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "1")))
        p.add_argument(
            "--server",
            default=env("BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432"),
            help="PostgreSQL server whose bench_library* databases the run creates and reuses",
        )
        p.add_argument(
            "--database-url",
            default=env("BENCH_DATABASE_URL"),
            help="use this migrated, populated database as it is (no seeding)",
        )
        p.add_argument("--app-port", type=int, default=int(env("BENCH_APP_PORT", "8042")))
        p.add_argument("--baseline-port", type=int, default=int(env("BENCH_BASELINE_PORT", "8043")))
        p.add_argument("--no-pgbench", action="store_true", help="skip the database ceiling")
        a = p.parse_args(argv)
        return cls(
            a.books,
            a.seed,
            a.rounds,
            a.duration,
            a.warmup,
            a.connections,
            a.threads,
            a.server,
            a.database_url,
            a.app_port,
            a.baseline_port,
            not a.no_pgbench and env("BENCH_PGBENCH", "1") != "0",
        )


class Server:
    """A server process we started: its pid for psutil, and a clean stop."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path, port: int):
        self.name = name
        self.port = port
        self._log = log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.ps = psutil.Process(self.process.pid)

    def wait_until_serving(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class RssSampler:
    """Samples a process's resident set size every 100 ms while a measurement runs."""

    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self._stop.wait(0.1):
                return


class Driver:
    """Runs wrk against a server and measures the server process meanwhile."""

    def __init__(self, cfg: Config, run_dir: Path, dsn: str) -> None:
        self._cfg = cfg
        self._run_dir = run_dir
        self._dsn = dsn
        self._nonce = 100

    def settle(self, timeout: float = 30) -> None:
        """Wait until no query of either server still runs (requests wrk gave up on).

        Otherwise the slow queries of one side's run would still be eating the CPUs during
        the other side's run.
        """

        async def busy() -> int:
            conn = await asyncpg.connect(self._dsn)
            try:
                deadline = time.monotonic() + timeout
                while True:
                    active = await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND application_name IN ('library', 'bench-baseline', 'pgbench')"
                    )
                    if not active or time.monotonic() > deadline:
                        return int(active)
                    await asyncio.sleep(0.2)
            finally:
                await conn.close()

        asyncio.run(busy())

    def _script(self, scenario: workload.Scenario) -> list[str]:
        if scenario.method == "POST":
            authors = self._run_dir / "post-authors.txt"
            if not authors.exists():
                authors.write_text("\n".join(scenario.post_authors) + "\n")
            self._nonce += 1
            if self._nonce > 999:
                raise RuntimeError("out of POST nonces for this run")
            token = self._run_dir / "token.txt"  # written when the app verifies tokens
            extra = [str(token)] if token.exists() else []
            return ["-s", str(WRK / "post.lua"), "--", str(authors), str(self._nonce), *extra]
        paths = self._run_dir / f"paths-{scenario.name}.txt"
        if not paths.exists():
            paths.write_text("\n".join(scenario.paths) + "\n")
        return ["-s", str(WRK / "paths.lua"), "--", str(paths)]

    def measure(self, server: Server, scenario: workload.Scenario, seconds: int) -> dict[str, Any]:
        cfg = self._cfg
        url = f"http://127.0.0.1:{server.port}"
        script = self._script(scenario)
        args = ["wrk", "-t", str(cfg.threads), "-c", str(cfg.connections), "-d", f"{seconds}s"]
        args += ["--timeout", "10s", *script[:2], url, *script[2:]]
        before = server.ps.cpu_times()
        with RssSampler(server.ps) as rss:
            done = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
                args, capture_output=True, text=True, check=True, timeout=seconds + 60
            )
        after = server.ps.cpu_times()
        self.settle()
        match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no summary: {done.stdout}\n{done.stderr}")
        raw = json.loads(match.group(1))
        requests = max(raw["requests"], 1)
        cpu = (after.user - before.user) + (after.system - before.system)
        return {
            "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000,
            "mean_ms": raw["mean_us"] / 1000,
            "requests": raw["requests"],
            "errors": raw["status_errors"] + raw["socket_errors"] + raw["timeouts"],
            "cpu_ms_per_request": 1000 * cpu / requests,
            "peak_rss_mb": rss.peak / 2**20,
        }


# How long the one-client pgbench runs on a statement with a database budget (a common word's
# first page takes tens of ms: still a hundred executions or more).
ALONE_SECONDS = 4


def _pgbench_target(dsn: str) -> list[str]:
    parts = urlsplit(dsn)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    return [*args, parts.path.lstrip("/")]


def _database_budget(scenario: workload.Scenario) -> dict[str, float] | None:
    """The scenario's database budget (workload.SEARCH_BUDGETS), as the results record it."""
    if scenario.database_ms is None:
        return None
    budget = {"one_client_p50_ms_max": scenario.database_ms}
    if scenario.ceiling_tps is not None:
        budget["pgbench_tps_min"] = scenario.ceiling_tps
    return budget


def _statement_counts(captured: dict[str, Any]) -> dict[str, Any]:
    statements = [len(r["statements"]) for r in captured["requests"]]
    transactions = [r["transactions"].count("BEGIN") for r in captured["requests"]]
    return {
        "statements_per_request": statistics.median(statements),
        "statements_max": max(statements),
        "transactions_per_request": statistics.median(transactions),
    }


def _summarise(rounds: list[dict[str, Any]], side: str) -> dict[str, float]:
    runs = [r[side] for r in rounds]
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


async def _prepare(
    cfg: Config, run_dir: Path
) -> tuple[str, int, list[workload.Scenario], dict[str, Any]]:
    dsn = cfg.database_url or await dataset.ensure(cfg.server, cfg.books, cfg.seed)
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
    removed = await dataset.remove_posted_books(dsn)
    if removed:
        print(f"Removed {removed:,} books left by earlier POST runs.", flush=True)
    conn = await asyncpg.connect(dsn)
    try:
        total = await conn.fetchval("SELECT count(*) FROM books")
        print(f"Choosing the requests from {total:,} books ...", flush=True)
        scenarios = await workload.build(conn, total)
        depth = min(workload.DEEP_PAGE_DEPTH, total // 2)
        expected_deep = await workload.deep_page_expected_id(conn, depth)
    finally:
        await conn.close()
    print("Capturing the app's SQL (one in-process pass over every request) ...", flush=True)
    captured = await capture(dsn.replace("postgresql://", "postgresql+asyncpg://"), scenarios)
    first = captured["deep_page"]["requests"][0]["first_item_id"]
    if first != expected_deep:
        raise RuntimeError(
            f"the constructed deep cursor starts at {first}, not {expected_deep}: "
            "the app's cursor format changed (see bench/workload.py _cursor_at)"
        )
    await dataset.remove_posted_books(dsn)
    (run_dir / "replay.json").write_bytes(orjson.dumps(captured))
    sql = {
        name: {
            "transactions": c["requests"][0]["transactions"],
            "statements": [
                {"sql": s["sql"], "many": s["many"], "transaction": s["transaction"]}
                for s in c["requests"][0]["statements"]
            ],
        }
        for name, c in captured.items()
    }
    (run_dir / "sql.json").write_text(json.dumps(sql, indent=2) + "\n")
    return dsn, int(total), scenarios, captured


def main(argv: list[str] | None = None) -> None:
    """Run the whole benchmark and print the table."""
    cfg = Config.from_args(argv)
    missing = [tool for tool in ("wrk", "pgbench") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"error: {' and '.join(missing)} not found (Debian: apt install wrk postgresql-client)"
        )
    started = datetime.now(UTC)
    run_dir = RESULTS / f"run-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    print(f"Results in {run_dir.relative_to(ROOT)}/", flush=True)
    dsn, total, scenarios, captured = asyncio.run(_prepare(cfg, run_dir))

    from shared.settings import Settings

    settings = Settings(database_url=dsn)
    pool_min, pool_max = settings.db_pool_size, settings.db_pool_size + settings.db_max_overflow
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LIBRARY_")}
    # The app verifies bearer tokens as in production: a key pair of the run's own, and a token
    # (valid for the whole run) that the POST scenario sends.
    from tools import devauth

    key = devauth.new_key_pair(run_dir / "auth")
    (run_dir / "token.txt").write_text(key.sign("catalog:write", sub="bench", ttl=24 * 3600))
    app = Server(
        "app",
        [str(Path(sys.executable).with_name("library")), "serve"],
        {
            **base_env,
            "DATABASE_URL": dsn,
            "LIBRARY_HOST": "127.0.0.1",
            "LIBRARY_PORT": str(cfg.app_port),
            "LIBRARY_ENVIRONMENT": "production",
            # One process, as measured so far (production's default is one per CPU).
            "LIBRARY_WORKERS": "1",
            "LIBRARY_LOG_FORMAT": "json",
            "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
            "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
            "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
            # wrk is one client at thousands of requests a second: limits it can never reach,
            # so that the rate limiter's cost is measured but it never answers 429.
            "LIBRARY_RATE_LIMIT_ANONYMOUS": "10000000/second",
            "LIBRARY_RATE_LIMIT_AUTHENTICATED": "10000000/second",
        },
        run_dir / "app.log",
        cfg.app_port,
    )
    baseline = Server(
        "baseline",
        [sys.executable, "-m", "bench.baseline"],
        {
            **base_env,
            "BENCH_DSN": dsn,
            "BENCH_REPLAY": str(run_dir / "replay.json"),
            "BENCH_POOL_MIN": str(pool_min),
            "BENCH_POOL_MAX": str(pool_max),
            "BENCH_BASELINE_PORT": str(cfg.baseline_port),
            "BENCH_STATEMENT_TIMEOUT_MS": str(settings.db_statement_timeout_ms),
        },
        run_dir / "baseline.log",
        cfg.baseline_port,
    )
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "config": {
            "books": total,
            "rounds": cfg.rounds,
            "order": "counterbalanced",
            "duration_s": cfg.duration,
            "warmup_s": cfg.warmup,
            "connections": cfg.connections,
            "wrk_threads": cfg.threads,
            "pool": [pool_min, pool_max],
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "commit": _git_commit(),
        },
        "scenarios": {},
    }
    driver = Driver(cfg, run_dir, dsn)
    try:
        app.wait_until_serving("/health/ready")
        baseline.wait_until_serving(scenarios[0].paths[0])
        for scenario in scenarios:
            print(f"\n{scenario.title} ({scenario.note})", flush=True)
            for server in (baseline, app):
                warm = driver.measure(server, scenario, cfg.warmup)
                print(f"  warm-up {server.name:8} {warm['rps']:8.0f} req/s", flush=True)
            rounds: list[dict[str, Any]] = []
            for index in range(cfg.rounds):
                # Counterbalanced: baseline first in odd rounds, the app first in even ones
                # (B A, A B, B A ...). The machine's speed drifts within a scenario (one run's
                # baseline fell from 5,580 to 3,029 GETs a second between scenarios): with the
                # baseline always first, a slowing machine always charged the app.
                if index % 2 == 0:
                    b = driver.measure(baseline, scenario, cfg.duration)
                    a = driver.measure(app, scenario, cfg.duration)
                else:
                    a = driver.measure(app, scenario, cfg.duration)
                    b = driver.measure(baseline, scenario, cfg.duration)
                ratio = a["rps"] / b["rps"] if b["rps"] else 0.0
                rounds.append({"baseline": b, "app": a, "ratio": ratio})
                print(
                    f"  round {index + 1}: baseline {b['rps']:7.0f} req/s, "
                    f"app {a['rps']:7.0f} req/s, ratio {ratio:.2f}",
                    flush=True,
                )
            ceiling: dict[str, Any] | None = None
            if cfg.pgbench:
                scripts = (
                    [pgbench.post_script(captured[scenario.name])]
                    if scenario.method == "POST"
                    else pgbench.read_scripts(captured[scenario.name])
                )
                ceiling = pgbench.run(
                    _pgbench_target(dsn), scripts, pool_min, cfg.duration, run_dir
                )
                driver.settle()  # pgbench's backends may still be finishing a slow query
                if "error" in ceiling:  # a script pgbench refused: say so, not "0 tx/s"
                    print(f"  pgbench  failed: {ceiling['error']}", flush=True)
                else:
                    print(f"  pgbench  {ceiling.get('tps', 0):8.0f} tx/s", flush=True)
                if scenario.database_ms is not None and "error" not in ceiling:
                    # The statement's own cost: one client, nothing queued, planned each time.
                    alone = pgbench.run(
                        _pgbench_target(dsn), scripts, 1, ALONE_SECONDS, run_dir, protocol="simple"
                    )
                    ceiling["one_client"] = alone
                    if "error" in alone:
                        print(f"  alone    failed: {alone['error']}", flush=True)
                    else:
                        print(
                            f"  alone    {alone['p50_ms']:8.2f} ms (p50, planned each time)",
                            flush=True,
                        )
            results["scenarios"][scenario.name] = {
                "title": scenario.title,
                "note": scenario.note,
                "target": scenario.target,
                "database_budget": _database_budget(scenario),
                "requests": len(scenario.paths),
                "rounds": rounds,
                "ratios": [r["ratio"] for r in rounds],
                "ratio_median": statistics.median(r["ratio"] for r in rounds),
                "app": _summarise(rounds, "app"),
                "baseline": _summarise(rounds, "baseline"),
                "pgbench": ceiling,
                **_statement_counts(captured[scenario.name]),
            }
    finally:
        app.stop()
        baseline.stop()
        asyncio.run(dataset.remove_posted_books(dsn))
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_average_at_end"] = os.getloadavg()
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = report.table(results)
    (run_dir / "table.md").write_text(table + "\n")
    report.chart(results, run_dir / "chart.png")
    if total == FULL_SIZE and cfg.database_url is None:
        # The committed summary docs/performance.md cites: only full-size runs replace it.
        for name in ("results.json", "table.md", "chart.png"):
            shutil.copy(run_dir / name, RESULTS / f"latest-{name}")
    print("\n" + table)
    print(f"\nJSON, chart and logs: {run_dir.relative_to(ROOT)}/", flush=True)


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return done.stdout.strip()
