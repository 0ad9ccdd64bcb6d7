"""Runs an import: source rows in batches through the BookImporter, a report of what went wrong."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TextIO

from library.books.interchange.goodbooks import SourceRow
from library.books.interchange.importer import BookImporter, ImportStatus

REPORT_COLUMNS = ("row", "line", "status", "problem", "reason", "raw")
DEFAULT_BATCH_SIZE = 2000


@dataclass(slots=True)
class ImportSummary:
    """The counts of a run: ``imported + present + rejected == rows`` always holds."""

    rows: int = 0
    imported: int = 0
    present: int = 0
    rejected: int = 0
    warned: int = 0  # rows imported (or present) with a repair or a dropped value
    authors_registered: int = 0

    @property
    def consistent(self) -> bool:
        return self.imported + self.present + self.rejected == self.rows


class Report:
    """The report file: one CSV line per rejected row and per warning, written as they come."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._writer = csv.writer(stream)
        self._writer.writerow(REPORT_COLUMNS)
        self.lines = 0

    def add(self, row: SourceRow, status: ImportStatus, problem: str, reason: str) -> None:
        self._writer.writerow(
            (row.number, row.line, status.value, problem, _as_text(reason), _as_text(row.raw))
        )
        self.lines += 1

    def flush(self) -> None:
        self._stream.flush()


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(cell: str) -> str:
    """``cell``, with an apostrophe in front when a spreadsheet would run it as a formula."""
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def _batches(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


async def run_import(
    rows: Iterable[SourceRow],
    importer: BookImporter,
    report: Report,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[ImportSummary], None] = lambda _: None,
) -> ImportSummary:
    """Import every row, ``batch_size`` at a time; each batch is committed before the next."""
    summary = ImportSummary()
    would_register: set[str] = set()  # a dry run registers nobody: count each name once
    for batch in _batches(rows, batch_size):
        drafted = [row for row in batch if row.draft is not None]
        result = await importer.import_batch(
            [row.draft for row in drafted if row.draft is not None], dry_run=dry_run
        )
        outcomes = dict(zip((row.number for row in drafted), result.outcomes, strict=True))
        if dry_run:
            would_register |= result.authors_registered
            summary.authors_registered = len(would_register)
        else:
            summary.authors_registered += len(result.authors_registered)
        for row in batch:
            summary.rows += 1
            outcome = outcomes.get(row.number)
            if outcome is None or outcome.status is ImportStatus.REJECTED:
                summary.rejected += 1
                reason = row.rejection if outcome is None else outcome.reason
                report.add(row, ImportStatus.REJECTED, "rejected", reason or "rejected")
                continue
            if outcome.status is ImportStatus.IMPORTED:
                summary.imported += 1
            else:
                summary.present += 1
            if row.warnings:
                summary.warned += 1
                for warning in row.warnings:
                    report.add(row, outcome.status, "warning", warning)
        report.flush()
        on_batch(summary)
    return summary


def default_report_path(source: Path) -> Path:
    """Where the report goes unless told: the current folder (the source may be read-only)."""
    return Path(f"{source.stem}.import-report.csv")
