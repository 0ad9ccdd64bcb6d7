"""``library import``: import a catalog export (goodbooks books.csv, or a ``library export``).

The command's work: wire the importer (``library.books.interchange``) from the root container,
stream the file, show progress. The application is imported only when the command runs (every
``library`` command would otherwise pay for it).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from library.cli.arguments import _batch_size
from library.cli.database import use_embedded_database
from shared.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from library.books.interchange.catalog_format import CatalogReader, ExportFormat
    from library.books.interchange.goodbooks import GoodbooksReader
    from library.books.interchange.runner import ImportSummary


def add_parser(commands: Any) -> None:
    import_parser = commands.add_parser(
        "import",
        help="import a catalog export (goodbooks books.csv)",
        description="Import a catalog export. Without DATABASE_URL, into the embedded "
        "development database (the one `make run` serves). Exit status: 0 done (rejected rows "
        "are in the report), 1 database not ready, 2 bad file or arguments, 130 interrupted.",
    )
    import_parser.add_argument(
        "format",
        choices=["goodbooks", "jsonl", "csv"],
        help="goodbooks: a goodbooks-10k books.csv; jsonl or csv: a `library export` file",
    )
    import_parser.add_argument("path", help="the file to import")
    import_parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=2000,
        help="rows per transaction (default: 2000)",
    )
    import_parser.add_argument(
        "--dry-run", action="store_true", help="validate and report, write nothing"
    )
    import_parser.add_argument(
        "--report",
        metavar="FILE",
        help="where to write rejected rows and warnings (default: <name>.import-report.csv)",
    )


def run(args: argparse.Namespace) -> int:
    """``library import goodbooks PATH``: load a catalog export; returns the exit status."""
    import asyncio

    from rich.console import Console

    from library.books.interchange.goodbooks import SourceError
    from library.books.interchange.runner import default_report_path
    from library.bootstrap.health import NotReadyError

    console = Console(stderr=True)
    path = Path(args.path)
    report_path = Path(args.report) if args.report else default_report_path(path)
    if Settings().database_url is None:
        use_embedded_database()
    options = ImportOptions(
        path=path,
        report_path=report_path,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        format=args.format,
    )
    started = time.perf_counter()
    try:
        summary = asyncio.run(import_goodbooks(options, console))
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotReadyError as exc:
        print(f"error: the database is not ready: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every finished batch is committed; run the same command again to "
            "finish (books already imported are recognised and skipped)",
            file=sys.stderr,
        )
        return 130
    elapsed = time.perf_counter() - started
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{path}: {summary.rows:,} rows in {elapsed:.2f}s"
        + (" (dry run: nothing was written)" if args.dry_run else "")
    )
    print(f"  {verb + ':':<21}{summary.imported:>8,}")
    print(f"  {'already present:':<21}{summary.present:>8,}")
    print(f"  {'rejected:':<21}{summary.rejected:>8,}")
    print(f"  {'with warnings:':<21}{summary.warned:>8,}  (imported or present, see the report)")
    authors = "authors to register" if args.dry_run else "authors registered"
    print(f"  {authors + ':':<21}{summary.authors_registered:>8,}")
    print(f"report: {report_path} (rejected rows and warnings)")
    if not summary.consistent:  # pragma: no cover - a bug, not an input problem
        print("error: the counts do not add up to the rows read", file=sys.stderr)
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What ``library import goodbooks`` was asked to do."""

    path: Path
    report_path: Path
    batch_size: int
    dry_run: bool
    # "goodbooks" (a goodbooks-10k books.csv) or the format of ``library export``.
    format: ExportFormat | Literal["goodbooks"] = "goodbooks"


class _PlainProgress:
    """Progress lines for logs and pipes: at most one every ``every`` seconds."""

    def __init__(self, reader: GoodbooksReader | CatalogReader, every: float = 2.0) -> None:
        self._reader = reader
        self._every = every
        self._last = time.monotonic()

    def __call__(self, summary: ImportSummary) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            size = self._reader.size
            percent = 100 * self._reader.bytes_read / size if size else 100.0
            print(f"import: {summary.rows:,} rows ({percent:.0f}%)", file=sys.stderr, flush=True)


async def import_goodbooks(options: ImportOptions, console: Console) -> ImportSummary:
    """Import the file.

    The file's encoding and header are checked before the database is touched (SourceError);
    a database that is not migrated to head stops the run before any write (NotReadyError).
    """
    from library.books.interchange.catalog_format import CatalogReader
    from library.books.interchange.goodbooks import GoodbooksReader
    from library.books.interchange.runner import ImportSummary, Report, run_import
    from library.bootstrap.container import RootContainer
    from shared.kernel.values import utc_now

    reader: GoodbooksReader | CatalogReader = (
        GoodbooksReader(options.path, now=utc_now())
        if options.format == "goodbooks"
        else CatalogReader(options.path, options.format)
    )
    rows = reader.rows()
    first = next(rows, None)
    source = rows if first is None else itertools.chain((first,), rows)

    container = RootContainer()
    engine = container.engine()
    # The rows' outcomes are counted (library_import_rows_total): a server sharing this
    # process's PROMETHEUS_MULTIPROC_DIR shows them on its /metrics.
    observability = container.observability()
    # "Already there?" is a read: on the read pool, as the API's reads (a few connections).
    read_pool = container.read_pool()
    try:
        await container.health().check()
        await read_pool.open()
        importer = container.books.importer()
        with (
            options.report_path.open("w", encoding="utf-8", newline="") as stream,
            _progress(reader, console) as on_batch,
        ):
            counted = ImportSummary()

            def after_batch(summary: ImportSummary) -> None:
                if not options.dry_run:
                    observability.count_import(counted, summary)
                counted.imported, counted.rejected = summary.imported, summary.rejected
                counted.present = summary.present
                on_batch(summary)

            return await run_import(
                source,
                importer,
                Report(stream),
                batch_size=options.batch_size,
                dry_run=options.dry_run,
                on_batch=after_batch,
            )
    finally:
        observability.stop()
        await read_pool.close()
        await engine.dispose()


@contextmanager
def _progress(
    reader: GoodbooksReader | CatalogReader, console: Console
) -> Iterator[Callable[[ImportSummary], None]]:
    """What to call after each batch: a rich bar on a terminal, plain lines otherwise."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not console.is_terminal:
        yield _PlainProgress(reader)
        return
    with Progress(
        TextColumn("[bold]importing[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("import", total=reader.size or None, rows=0)

        def show(summary: ImportSummary) -> None:
            progress.update(task, completed=reader.bytes_read, rows=summary.rows)

        yield show
