"""`make bench-import`: the goodbooks import against a raw asyncpg COPY of the same rows.

In one run, on one PostgreSQL server, interleaved (copy, import, copy, import, ...):

- the import: ``library import goodbooks`` as a user runs it (a fresh process, wall clock from
  start to exit, and the import's own time printed by the command), into a freshly migrated
  database; peak RSS from the kernel's accounting of that process (wait4);
- the baseline: ``asyncpg.copy_records_to_table`` of the very rows the import wrote (authors,
  books, credits), already parsed and in memory, into another freshly migrated database, in one
  transaction: the fastest way to get those rows into PostgreSQL from Python.

Then a 100k-row file (the 10k file ten times, with altered ids, ISBNs and titles) once, to show
how time and memory grow. Results: a table on stdout and bench/results/import.json.

Server: BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), else the
embedded PostgreSQL in .pgdata/bench. Its databases are bench_import_*, prefixed with
BENCH_DB_PREFIX when set (so two checkouts can share a server).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from stdnum import ean, isbn

ROOT = Path(__file__).resolve().parents[1]
GOODBOOKS = ROOT.parent / "shared" / "data" / "goodbooks-10k" / "books.csv"
RESULTS = ROOT / "bench" / "results"
_PREFIX = os.environ.get("BENCH_DB_PREFIX", "")
TEMPLATE, APP_DB, COPY_DB = (
    f"{_PREFIX}bench_import_{name}" for name in ("template", "app", "copy")
)
TABLES = {
    "authors": ("id", "name", "created_at", "updated_at", "version"),
    # With the credits' copy the import wrote (credited_ids, credited_names): the COPY writes
    # each book once, as the import does (migration 0005), and the triggers only check it.
    "books": (
        "id", "title", "isbn13", "publication_year", "language", "external_ref",
        "created_at", "updated_at", "version", "credited_ids", "credited_names",
    ),
    "book_authors": ("book_id", "author_id", "position"),
}  # fmt: skip


class Server:
    def __init__(self) -> None:
        self.admin = os.environ.get(
            "BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )

    async def choose(self) -> None:
        try:
            conn = await asyncpg.connect(self.admin, timeout=3)
            await conn.close()
        except (OSError, asyncpg.PostgresError):
            from tools import devdb

            socket_dir, user = devdb.start((ROOT / ".pgdata" / "bench").resolve())
            self.admin = f"postgresql://{user}@/postgres?host={socket_dir}"

    def url(self, database: str, driver: str = "postgresql") -> str:
        base, _, query = self.admin.partition("?")
        base = base.rsplit("/", 1)[0] + f"/{database}"
        url = f"{base}?{query}" if query else base
        return url.replace("postgresql://", f"{driver}://", 1)

    async def execute(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.admin)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    async def fresh(self, name: str) -> None:
        await self.execute(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"',
        )


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def run_import(server: Server, path: Path, report: Path) -> dict[str, float]:
    """One ``library import`` process: wall seconds, the import's own seconds, peak RSS (MB)."""
    env = {**os.environ, "DATABASE_URL": server.url(APP_DB, "postgresql+asyncpg")}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [sys.executable, "-m", "library.cli", "import", "goodbooks", str(path), "--report",
             str(report)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )  # fmt: skip
        # wait4: the exit status and the kernel's accounting of that one child (peak RSS, KiB).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"import failed ({process.returncode}):\n{stderr}")
    match = re.search(r"rows in ([\d.]+)s", stdout)
    imported = re.search(r"imported:\s+([\d,]+)", stdout)
    return {
        "wall_s": wall,
        "import_s": float(match.group(1)) if match else wall,
        "imported": int(imported.group(1).replace(",", "")) if imported else 0,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


async def written_rows(server: Server) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(server.url(APP_DB))
    try:
        return {
            table: [tuple(r) for r in await conn.fetch(f"SELECT {', '.join(cols)} FROM {table}")]
            for table, cols in TABLES.items()
        }
    finally:
        await conn.close()


async def copy_rows(server: Server, rows: dict[str, list[tuple[Any, ...]]]) -> float:
    """Seconds to COPY the rows into a fresh migrated database, in one transaction."""
    await server.fresh(COPY_DB)
    conn = await asyncpg.connect(server.url(COPY_DB))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            for table, cols in TABLES.items():
                await conn.copy_records_to_table(table, records=rows[table], columns=cols)
        return time.perf_counter() - started
    finally:
        await conn.close()


def enlarge(source: Path, target: Path, times: int) -> int:
    """The file ``times`` over: new book ids, ISBN-10s (still valid, leading zeros lost again)
    and titles for each copy; authors kept, so they are matched, not multiplied."""
    rows = 0
    with (
        source.open(encoding="utf-8", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader = csv.DictReader(src)
        assert reader.fieldnames is not None  # noqa: S101
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        originals = list(reader)
        for k in range(times):
            for row in originals:
                copy = dict(row)
                copy["book_id"] = str(int(row["book_id"]) + k * 1_000_000)
                if k:
                    copy["title"] = f"{row['title']} [copy {k}]"
                    if row["isbn"]:
                        core = f"{(int(row['isbn'].zfill(10)[:9]) + k * 7919) % 10**9:09d}"
                        copy["isbn"] = _isbn10_of(core).lstrip("0")
                writer.writerow(copy)
                rows += 1
    return rows


def _isbn10_of(core: str) -> str:
    """The valid ISBN-10 starting with these nine digits (stdnum computes the check digit)."""
    isbn13 = f"978{core}"
    return str(isbn.to_isbn10(isbn13 + ean.calc_check_digit(isbn13)))


def table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds at 10k rows")
    parser.add_argument("--times", type=int, default=10, help="the large file is 10k x TIMES rows")
    parser.add_argument("--file", type=Path, default=GOODBOOKS)
    args = parser.parse_args()
    if not args.file.is_file():
        raise SystemExit(f"error: {args.file} not found (the goodbooks-10k books.csv)")

    server = Server()
    await server.choose()
    await server.execute(
        f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)', f'CREATE DATABASE "{TEMPLATE}"'
    )
    await asyncio.to_thread(migrate, server.url(TEMPLATE, "postgresql+asyncpg"))
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    print(f"server: {server.admin.split('@')[-1]}; {os.cpu_count()} CPUs; rounds: {args.rounds}")

    rounds: list[dict[str, float]] = []
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for number in range(args.rounds + 1):  # round 0 warms caches up and is not counted
        await server.fresh(APP_DB)
        app = await asyncio.to_thread(run_import, server, args.file, work / "report.csv")
        if not rows:
            rows = await written_rows(server)
        copy_s = await copy_rows(server, rows)
        if number:
            rounds.append({**app, "copy_s": copy_s})
            print(
                f"  round {number}: import {app['import_s']:.2f}s (process {app['wall_s']:.2f}s),"
                f" copy {copy_s:.3f}s, ratio {copy_s / app['import_s']:.3f}"
            )

    data_rows = 10_000
    big = work / "books-x.csv"
    big_rows = await asyncio.to_thread(enlarge, args.file, big, args.times)
    await server.fresh(APP_DB)
    large = await asyncio.to_thread(run_import, server, big, work / "report-x.csv")
    large_copy = await copy_rows(server, await written_rows(server))

    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratios = [r["copy_s"] / r["import_s"] for r in rounds]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": data_rows,
        "rounds": rounds,
        "median": med,
        "median_ratio_import_vs_copy": statistics.median(ratios),
        "large": {**large, "rows": big_rows, "copy_s": large_copy},
        "scaling_time_ratio": large["import_s"] / med["import_s"],
        "rss_growth_mb": large["peak_rss_mb"] - med["peak_rss_mb"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import.json").write_text(json.dumps(result, indent=2) + "\n")

    def rate(rows: int, seconds: float) -> str:
        return f"{rows / seconds:,.0f}"

    print()
    print(
        table(
            [
                ["run", "rows", "import s", "import rows/s", "COPY s", "COPY rows/s",
                 "import/COPY", "peak RSS MB", "process s"],
                ["10k (median)", f"{data_rows:,}", f"{med['import_s']:.2f}",
                 rate(data_rows, med["import_s"]), f"{med['copy_s']:.3f}",
                 rate(data_rows, med["copy_s"]), f"{statistics.median(ratios):.3f}x",
                 f"{med['peak_rss_mb']:.0f}", f"{med['wall_s']:.2f}"],
                [f"{big_rows // 1000}k", f"{big_rows:,}", f"{large['import_s']:.2f}",
                 rate(big_rows, large["import_s"]), f"{large_copy:.3f}",
                 rate(big_rows, large_copy), f"{large_copy / large['import_s']:.3f}x",
                 f"{large['peak_rss_mb']:.0f}", f"{large['wall_s']:.2f}"],
            ]
        )
    )  # fmt: skip
    print()
    print(
        f"targets: 10k end to end < 3 s: {med['wall_s']:.2f}s (import {med['import_s']:.2f}s); "
        f"import/COPY >= 0.3x: {statistics.median(ratios):.3f}x; "
        f"{args.times}x rows -> {result['scaling_time_ratio']:.1f}x time; "
        f"peak RSS growth {result['rss_growth_mb']:+.0f} MB (< 100 MB)"
    )
    print(f"results: {RESULTS / 'import.json'}")


if __name__ == "__main__":
    asyncio.run(main())
