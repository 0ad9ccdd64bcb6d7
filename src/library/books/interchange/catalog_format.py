"""The catalog's own export format, written by ``library export`` and read back by
``library import jsonl|csv``.

One record per book, with no database identity (ids and timestamps belong to one database), so
that an export imported into another database exports again to the same bytes:

- ``ref``: the book's external reference (``goodbooks:42``), or ``library:<id>`` for a book
  created through the API; imported, it becomes the book's external reference, which is how a
  re-import recognises the book;
- ``title``; ``authors``: the credited names in credit order; ``isbn13``; ``publication_year``;
  ``language``.

JSON Lines: one object per line, keys in that order. CSV: a header with those columns, and
``authors`` as a JSON array of strings (a name may hold a comma). Empty means null in CSV.
Records come ordered by ``ref`` (byte order), so two exports of the same catalog are identical.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from library.books.interchange.goodbooks import (
    FIELD_SIZE_LIMIT,
    SourceError,
    SourceRow,
    _Lines,
    _open,
    check_utf8,
)
from library.books.interchange.importer import LOCAL_REF_PREFIX, BookDraft, ExportedBook

ExportFormat = Literal["jsonl", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")
COLUMNS = ("ref", "title", "authors", "isbn13", "publication_year", "language")
__all__ = ["COLUMNS", "EXPORT_FORMATS", "LOCAL_REF_PREFIX", "CatalogReader", "CsvLines"]


def jsonl_line(book: ExportedBook) -> bytes:
    """One JSON Lines record (with its line break)."""
    return orjson.dumps(dict(zip(COLUMNS, book, strict=True))) + b"\n"


class CsvLines:
    """CSV records as text, one call per book (the header first)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def _take(self, fields: Sequence[object]) -> str:
        self._writer.writerow(fields)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def header(self) -> str:
        return self._take(COLUMNS)

    def line(self, book: ExportedBook) -> str:
        ref, title, authors, isbn13, year, language = book
        names = orjson.dumps(list(authors)).decode()
        return self._take(
            (ref, title, names, isbn13 or "", "" if year is None else year, language or "")
        )


class CatalogReader:
    """Streams the records of an export file as import rows: the file is never held in memory.

    A record that cannot be a book (bad JSON, missing or mistyped fields) is a rejected row;
    a file that cannot be read at all (missing, empty, not UTF-8, wrong header) is SourceError.
    """

    def __init__(self, path: Path, fmt: ExportFormat) -> None:
        self.path = path
        self.format = fmt
        self.size = 0
        self._lines: _Lines | None = None

    @property
    def bytes_read(self) -> int:
        return 0 if self._lines is None else self._lines.bytes_read

    def rows(self) -> Iterator[SourceRow]:
        """Check the encoding (and the CSV header), then yield every record."""
        check_utf8(self.path)
        with _open(self.path) as stream:
            self.size = self.path.stat().st_size
            if self.size == 0:
                raise SourceError(f"{self.path}: the file is empty")
            self._lines = _Lines(stream)
            if self.format == "jsonl":
                yield from self._jsonl(self._lines)
            else:
                yield from self._csv(self._lines)

    def _jsonl(self, lines: _Lines) -> Iterator[SourceRow]:
        number = 0
        for line_number, line in enumerate(lines, start=1):
            raw = lines.take()
            if not line.strip():
                continue
            number += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                if number == 1:
                    raise SourceError(
                        f"{self.path}: line {line_number} is not JSON ({exc}); "
                        "is this a `library export --format jsonl` file?"
                    ) from None
                yield SourceRow(number, line_number, raw, rejection=f"not JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield SourceRow(number, line_number, raw, rejection="not a JSON object")
                continue
            yield _row(number, line_number, raw, record)

    def _csv(self, lines: _Lines) -> Iterator[SourceRow]:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
        reader = csv.reader(lines, strict=True)
        try:
            header = [c.strip().lstrip("\ufeff") for c in next(reader)]
        except (StopIteration, csv.Error) as exc:
            raise SourceError(f"{self.path}: line 1 is not a CSV header ({exc})") from None
        lines.take()
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise SourceError(
                f"{self.path}: missing column(s) {', '.join(missing)} in the header; an export "
                f"has {', '.join(COLUMNS)}"
            )
        positions = [header.index(c) for c in COLUMNS]
        number = 0
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield SourceRow(number, start, lines.take(), rejection=f"bad CSV: {exc}")
                continue
            raw = lines.take()
            if not fields:
                continue
            number += 1
            if len(fields) != len(header):
                rejection = f"expected {len(header)} fields, found {len(fields)}"
                yield SourceRow(number, start, raw, rejection=rejection)
                continue
            values = dict(zip(COLUMNS, (fields[i] for i in positions), strict=True))
            record: dict[str, Any] = {k: (v if v != "" else None) for k, v in values.items()}
            try:
                record["authors"] = orjson.loads(values["authors"] or "null")
            except orjson.JSONDecodeError:
                record["authors"] = values["authors"]  # refused below: not a list
            year = record["publication_year"]
            if isinstance(year, str):
                stripped = year.strip()
                digits = stripped.removeprefix("-")
                record["publication_year"] = (
                    int(stripped) if digits.isascii() and digits.isdigit() else year
                )
            yield _row(number, start, raw, record)


def _row(number: int, line: int, raw: str, record: dict[str, Any]) -> SourceRow:
    """A row from one record's fields (types checked here; values by the importer's rules)."""
    ref, title, authors = record.get("ref"), record.get("title"), record.get("authors")
    if not isinstance(ref, str) or not ref.strip():
        return SourceRow(number, line, raw, rejection="ref is missing: a record needs its ref")
    if not isinstance(title, str):
        return SourceRow(number, line, raw, rejection="title is missing or not a string")
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        return SourceRow(number, line, raw, rejection="authors is not a list of names")
    optional = {"isbn13": str, "publication_year": int, "language": str}
    for name, kind in optional.items():
        value = record.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return SourceRow(
                number, line, raw, rejection=f"{name} must be a {kind.__name__} or null"
            )
    draft = BookDraft(
        title=title,
        author_names=tuple(authors),
        external_ref=ref,
        isbn=record.get("isbn13"),
        publication_year=record.get("publication_year"),
        language=record.get("language"),
    )
    return SourceRow(number, line, raw, draft=draft)
