"""``library export``: write the whole catalog (books with their credited authors) as JSON Lines
or CSV.

The command's work: read the catalog in one snapshot (``library.books.interchange``), write it
in the export format, show progress. The application is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from library.cli.database import use_embedded_database
from shared.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from library.books.interchange.catalog_format import ExportFormat

# Progress is shown (and the output flushed) every this many books.
_STEP = 1000


def add_parser(commands: Any) -> None:
    export_parser = commands.add_parser(
        "export",
        help="write the whole catalog (books with their credited authors) as JSON Lines or CSV",
        description="Stream every book, with its credited authors in order, ordered by ref. "
        "`library import jsonl|csv FILE` reads it back. Without DATABASE_URL, from the "
        "embedded development database. Exit status: 0 done, 1 database not ready, 2 bad "
        "arguments, 130 interrupted.",
    )
    export_parser.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="default: jsonl"
    )
    export_parser.add_argument("--out", metavar="FILE", help="the file to write (default: stdout)")


def run(args: argparse.Namespace) -> int:
    """``library export``: stream the whole catalog to a file or stdout; the exit status."""
    import asyncio

    from rich.console import Console

    from library.bootstrap.health import NotReadyError

    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        print(f"error: {out} is a directory: --out needs a file name", file=sys.stderr)
        return 2
    if Settings().database_url is None:
        use_embedded_database()
    try:
        output = sys.stdout.buffer if out is None else out.open("wb")
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        options = ExportOptions(format=args.format, out=out)
        written = asyncio.run(export_catalog(options, output, Console(stderr=True)))
    except NotReadyError as exc:
        print(f"error: the database is not ready: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1  # the reader went away (e.g. `| head`): nothing more to say
    except KeyboardInterrupt:
        print("\ninterrupted: the export is incomplete", file=sys.stderr)
        return 130
    finally:
        if out is not None:
            output.close()
    elapsed = time.perf_counter() - started
    where = "stdout" if out is None else str(out)
    print(
        f"exported {written:,} books to {where} ({args.format}) in {elapsed:.2f}s", file=sys.stderr
    )
    return 0


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What ``library export`` was asked to do; ``out`` None is stdout."""

    format: ExportFormat
    out: Path | None


async def export_catalog(options: ExportOptions, output: BinaryIO, console: Console) -> int:
    """Write every book to ``output``; the number written.

    A database that is not migrated to head stops before anything is written (NotReadyError).
    """
    from library.books.interchange.catalog_format import CsvLines, jsonl_line
    from library.books.interchange.export_query import CatalogExport
    from library.bootstrap.container import RootContainer

    container = RootContainer()
    # On PostgreSQL itself, past a transaction-mode pooler: asyncpg names the cursor's statement,
    # which would stay behind on the pooler's server session.
    container.settings.override(Settings().direct())
    engine = container.engine()
    read_pool = container.read_pool()
    try:
        await container.health().check()
        await read_pool.open()
        async with read_pool.connection() as connection:
            export = CatalogExport(connection)
            csv_lines = CsvLines() if options.format == "csv" else None
            if csv_lines is not None:
                output.write(csv_lines.header().encode())
            written = 0
            with _progress(console, lambda: export.total) as show:
                async for book in export.records():
                    if csv_lines is None:
                        output.write(jsonl_line(book))
                    else:
                        output.write(csv_lines.line(book).encode())
                    written += 1
                    if written % _STEP == 0:
                        show(written)
                show(written)
            output.flush()
            return written
    finally:
        await read_pool.close()
        await engine.dispose()


@contextmanager
def _progress(console: Console, total: Callable[[], int]) -> Iterator[Callable[[int], None]]:
    """What to call with the count written: a rich bar on a terminal, plain lines otherwise."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not console.is_terminal:
        last = [time.monotonic()]

        def line(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 2.0:
                last[0] = now
                print(f"export: {done:,} of {total():,} books", file=sys.stderr, flush=True)

        yield line
        return
    with Progress(
        TextColumn("[bold]exporting[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("export", total=None)

        def show(done: int) -> None:
            progress.update(task, completed=done, total=total() or None)

        yield show
