"""``library export``: write the whole catalog (books with their credited authors) as JSON Lines
or CSV."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from library.cli.database import use_embedded_database
from shared.settings import Settings


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

    from library.bootstrap.catalog_export import ExportOptions, export_catalog
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
