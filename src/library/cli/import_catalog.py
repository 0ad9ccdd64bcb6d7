"""``library import``: import a catalog export (goodbooks books.csv, or a ``library export``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from library.cli.arguments import _batch_size
from library.cli.database import use_embedded_database
from shared.settings import Settings


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

    from library.books.importing.goodbooks import SourceError
    from library.books.importing.runner import default_report_path
    from library.bootstrap.catalog_import import ImportOptions, import_goodbooks
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
