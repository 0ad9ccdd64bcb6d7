"""What verifying bearer tokens costs: the app against itself, app against app (`make bench-auth`).

Three servers on one database, driven in turn by wrk with `bench/run.py`'s machinery:

- ``auth``: as production runs it (a key set, tokens verified on every write);
- ``noauth``: the same code with ``LIBRARY_AUTH_DISABLED=true`` (development only);
- ``before`` (optional, ``--before-checkout DIR``): another checkout's server, e.g. main before
  this change, for the reads.

Rate limits are off on every server (one wrk client would hit them): this measures the token.
POST sends the same ``Authorization`` header to both servers; ``noauth`` ignores it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import dataset, workload
from bench.run import RESULTS, Config, Driver, Server

SCENARIOS = ("get_book", "list_50", "post_book")


def _env(dsn: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIBRARY_")}
    return {
        **base,
        "DATABASE_URL": dsn,
        "LIBRARY_HOST": "127.0.0.1",
        "LIBRARY_PORT": str(port),
        "LIBRARY_WORKERS": "1",  # one process (production's default is one per CPU)
        "LIBRARY_LOG_FORMAT": "json",
        "LIBRARY_RATE_LIMIT_ENABLED": "false",
        **extra,
    }


async def _scenarios(dsn: str, only: list[str]) -> list[workload.Scenario]:
    removed = await dataset.remove_posted_books(dsn)
    if removed:
        print(f"Removed {removed:,} books left by earlier POST runs.", flush=True)
    conn = await asyncpg.connect(dsn)
    try:
        total = await conn.fetchval("SELECT count(*) FROM books")
        print(f"Choosing the requests from {total:,} books ...", flush=True)
        return [s for s in await workload.build(conn, total) if s.name in (only or SCENARIOS)]
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_bench", description=__doc__)
    parser.add_argument("--database-url", required=True, help="a migrated, seeded database")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--before-checkout", type=Path, help="a checkout to compare reads with")
    parser.add_argument(
        "--before-writes",
        action="store_true",
        help="compare POST with the before checkout too (it verifies the same tokens: a "
        "checkout with auth, e.g. main before the outbox for issue 13's POST cost)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        default=[],
        help="measure this scenario only (repeatable). Three servers' read and write pools at "
        "16 connections each exceed a default PostgreSQL's 100 connections: POST alone fits.",
    )
    args = parser.parse_args(argv)
    dsn = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    cfg = Config.from_args(
        [
            "--database-url",
            dsn,
            "--rounds",
            str(args.rounds),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--connections",
            str(args.connections),
            "--no-pgbench",
        ]
    )
    started = datetime.now(UTC)
    run_dir = RESULTS / f"auth-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    scenarios = asyncio.run(_scenarios(dsn, args.only))

    from tools import devauth

    key = devauth.new_key_pair(run_dir / "auth")
    (run_dir / "token.txt").write_text(key.sign("catalog:write", sub="bench", ttl=24 * 3600))
    library = str(Path(sys.executable).with_name("library"))
    servers = [
        Server(
            "auth",
            [library, "serve"],
            _env(
                dsn,
                8052,
                {
                    "LIBRARY_ENVIRONMENT": "production",
                    "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
                    "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
                    "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
                },
            ),
            run_dir / "auth.log",
            8052,
        ),
        Server(
            "noauth",
            [library, "serve"],
            _env(
                dsn, 8053, {"LIBRARY_ENVIRONMENT": "development", "LIBRARY_AUTH_DISABLED": "true"}
            ),
            run_dir / "noauth.log",
            8053,
        ),
    ]
    if args.before_checkout:
        before = args.before_checkout.resolve()
        servers.append(
            Server(
                "before",
                [str(before / ".venv" / "bin" / "library"), "serve"],
                _env(
                    dsn,
                    8054,
                    {
                        "LIBRARY_ENVIRONMENT": "production",
                        "LIBRARY_ALEMBIC_CONFIG": str(before / "alembic.ini"),
                        # Ignored by a checkout without tokens; verified by one with them.
                        "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
                        "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
                        "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
                    },
                ),
                run_dir / "before.log",
                8054,
            )
        )
    driver = Driver(cfg, run_dir, dsn)
    results: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "scenarios": {}}
    try:
        for server in servers:
            server.wait_until_serving("/health/live", timeout=240)  # three start at once
        for scenario in scenarios:
            print(f"\n{scenario.title}", flush=True)
            # A checkout before tokens existed is compared on reads only (--before-writes: POST).
            sides = [
                s
                for s in servers
                if scenario.method == "GET" or s.name != "before" or args.before_writes
            ]
            for server in sides:
                driver.measure(server, scenario, cfg.warmup)
            rounds: list[dict[str, Any]] = []
            for index in range(cfg.rounds):
                # Each round starts with another server: whichever runs first in a round was
                # seen to measure a few percent worse, whatever its code.
                turn = index % len(sides)
                ordered = sides[turn:] + sides[:turn]
                measured = {s.name: driver.measure(s, scenario, cfg.duration) for s in ordered}
                measured = {s.name: measured[s.name] for s in sides}
                rounds.append(measured)
                print(
                    f"  round {index + 1}: "
                    + ", ".join(f"{n} {m['rps']:7.0f} req/s" for n, m in measured.items()),
                    flush=True,
                )
            medians = {s.name: statistics.median(r[s.name]["rps"] for r in rounds) for s in sides}
            errors = {s.name: sum(r[s.name]["errors"] for r in rounds) for s in sides}
            results["scenarios"][scenario.name] = {
                "title": scenario.title,
                "rps_median": medians,
                "errors": errors,
                "auth_vs_noauth": medians["auth"] / medians["noauth"],
                "auth_vs_before": medians["auth"] / medians["before"]
                if "before" in medians
                else None,
                "rounds": rounds,
            }
    finally:
        for server in servers:
            server.stop()
        asyncio.run(dataset.remove_posted_books(dsn))
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        "\n| Scenario | auth req/s | noauth req/s | auth / noauth | before req/s | auth / before |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for s in results["scenarios"].values():
        m = s["rps_median"]
        before = f"{m['before']:.0f}" if "before" in m else "-"
        ratio = f"{s['auth_vs_before']:.2f}" if s["auth_vs_before"] else "-"
        print(
            f"| {s['title']} | {m['auth']:.0f} | {m['noauth']:.0f} | "
            f"{s['auth_vs_noauth']:.2f} | {before} | {ratio} |"
        )
    print(f"\nJSON and logs: {run_dir}/", flush=True)


if __name__ == "__main__":
    main()
