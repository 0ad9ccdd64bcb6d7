"""`make bench-outbox`: what the transactional outbox costs POST, app against app.

The same build served twice side by side (bench/sidebyside.py), one worker each, tokens
verified, POST a book with wrk:

- ``without``: ``LIBRARY_EVENTS_OUTBOX_ENABLED=false``: no event recorded, the book's
  statement without the events' CTE, no relay (development only: it breaks docs/events.md's
  guarantees, and exists to measure this);
- ``outbox``: as production runs it: every POST's ``book.created`` in its transaction, the
  relay delivering them to the books' copy of author names in the same process.

Both run with ``LIBRARY_ENVIRONMENT=development`` (the switch is refused elsewhere; the
environment changes nothing else on this path). The figure: the median over the rounds of
``outbox``'s req/s over ``without``'s in the same round; issue 13's bar is 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench import dataset, workload
from bench.run import RESULTS, ROOT, Config
from bench.sidebyside import Side, compare, table

TARGET = 0.9


def _args(argv: list[str] | None) -> Config:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__)
    p.add_argument("--books", type=int, default=int(env("BENCH_BOOKS", "100000")))
    p.add_argument("--seed", type=int, default=int(env("BENCH_SEED", "1")))
    p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "6")))
    p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "8")))
    p.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")))
    p.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")))
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "1")))
    p.add_argument("--server", default=env("BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432"))
    p.add_argument("--database-url", default=env("BENCH_DATABASE_URL"))
    p.add_argument("--port", type=int, default=int(env("BENCH_OUTBOX_PORT", "8056")))
    a = p.parse_args(argv)
    return Config(
        a.books, a.seed, a.rounds, a.duration, a.warmup, a.connections, a.threads, a.server,
        a.database_url, a.port, a.port, False,
    )  # fmt: skip


async def _prepare(cfg: Config) -> tuple[str, int, list[workload.Scenario]]:
    dsn = cfg.database_url or await dataset.ensure(cfg.server, cfg.books, cfg.seed)
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
    await dataset.remove_posted_books(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        total = int(await conn.fetchval("SELECT count(*) FROM books"))
        scenarios = [s for s in await workload.build(conn, total) if s.name == "post_book"]
    finally:
        await conn.close()
    return dsn, total, scenarios


def main(argv: list[str] | None = None) -> None:
    cfg = _args(argv)
    started = datetime.now(UTC)
    run_dir = RESULTS / f"outbox-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    dsn, total, scenarios = asyncio.run(_prepare(cfg))
    from tools import devauth

    key = devauth.new_key_pair(run_dir / "auth")
    # The driver sends this token with every POST (both servers verify it).
    (run_dir / "token.txt").write_text(key.sign("catalog:write", sub="bench", ttl=24 * 3600))
    common = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LIBRARY_", "OTEL_"))},
        "DATABASE_URL": dsn,
        "LIBRARY_HOST": "127.0.0.1",
        "LIBRARY_ENVIRONMENT": "development",
        "LIBRARY_WORKERS": "1",  # one process each
        "LIBRARY_LOG_FORMAT": "json",
        "LIBRARY_RATE_LIMIT_ENABLED": "false",  # wrk is one client
        "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
        "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
        "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
    }
    sides = [
        Side(
            "without",
            common | {"LIBRARY_EVENTS_OUTBOX_ENABLED": "false"},
            {"outbox": False, "relay": False},
        ),
        Side(
            "outbox",
            common
            | {"LIBRARY_EVENTS_OUTBOX_ENABLED": "true", "LIBRARY_EVENTS_RELAY_ENABLED": "true"},
            {"outbox": True, "relay": True},
        ),
    ]
    try:
        results: dict[str, Any] = compare(cfg, run_dir, dsn, scenarios, sides, target=TARGET)
    finally:
        asyncio.run(dataset.remove_posted_books(dsn))
    results["started"] = started.isoformat(timespec="seconds")
    results["config"]["books"] = total
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = table(results, f"{total:,} books; POST with the outbox and without it")
    results["table"] = text
    payload = json.dumps(results, indent=2) + "\n"
    (run_dir / "outbox.json").write_text(payload)
    (RESULTS / "outbox.json").write_text(payload)
    print("\n" + text)
    print(f"\nJSON and logs: {run_dir.relative_to(ROOT)}/; summary: bench/results/outbox.json")


if __name__ == "__main__":
    main()
