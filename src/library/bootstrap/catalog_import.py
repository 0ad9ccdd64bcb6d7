"""The ``library import`` command's work: wire the importer, stream the file, show progress."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from library.books.importing.catalog import CatalogReader, ExportFormat
from library.books.importing.goodbooks import GoodbooksReader
from library.books.importing.runner import (
    DEFAULT_BATCH_SIZE,
    ImportSummary,
    Report,
    run_import,
)
from library.bootstrap.container import RootContainer
from shared.kernel.values import utc_now


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What ``library import goodbooks`` was asked to do."""

    path: Path
    report_path: Path
    batch_size: int = DEFAULT_BATCH_SIZE
    dry_run: bool = False
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
    try:
        await container.health().check()
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
        await engine.dispose()


@contextmanager
def _progress(
    reader: GoodbooksReader | CatalogReader, console: Console
) -> Iterator[Callable[[ImportSummary], None]]:
    """What to call after each batch: a rich bar on a terminal, plain lines otherwise."""
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
