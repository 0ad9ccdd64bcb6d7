"""The ``library export`` command's work: stream the catalog to a file, show progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from library.books.importing.catalog import CsvLines, ExportFormat, jsonl_line
from library.books.infrastructure.export import CatalogExport
from library.bootstrap.container import RootContainer

# Progress is shown (and the output flushed) every this many books.
_STEP = 1000


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What ``library export`` was asked to do; ``out`` None is stdout."""

    format: ExportFormat
    out: Path | None


async def export_catalog(options: ExportOptions, output: BinaryIO, console: Console) -> int:
    """Write every book to ``output``; the number written.

    A database that is not migrated to head stops before anything is written (NotReadyError).
    """
    container = RootContainer()
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
