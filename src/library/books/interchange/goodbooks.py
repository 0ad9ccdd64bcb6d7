"""Reading a goodbooks-10k ``books.csv`` export: one draft (or a rejection) per data row.

The repair policy (documented in docs/import-export.md, "Importing a catalog"):

- ``isbn`` is an ISBN-10 that lost its leading zeros: it is left-padded to 10 characters and its
  check digit verified; a valid one becomes its ISBN-13. One that still fails is dropped: the
  book is imported without an ISBN and the row is reported with a warning.
- ``isbn13`` was written as a float and lost digits: it is never used.
- ``authors`` is split on commas, in credit order; each name is trimmed, its inner whitespace
  collapsed to single spaces and normalised to NFC; a name repeated on one row is credited once.
- ``original_publication_year`` is a float (``-720.0`` is 720 BCE); empty means unknown; a value
  that is not a whole number or breaks the year rule is dropped with a warning.
- ``language_code`` mixes ISO 639-2 and BCP 47 (``eng``, ``en-US``): it is normalised as the API
  does (``eng`` -> ``en``); an unknown code is dropped with a warning.
- ``book_id`` is the source's own id: the book's external reference is ``goodbooks:<book_id>``,
  which is how a re-run recognises books that have no ISBN.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO

from library.books.domain.model import valid_isbn, valid_language, valid_publication_year
from library.books.interchange.importer import BookDraft
from shared.kernel.errors import RuleViolationError

SOURCE = "goodbooks"
REQUIRED_COLUMNS = (
    "book_id",
    "isbn",
    "authors",
    "original_publication_year",
    "title",
    "language_code",
)
# A row is a few hundred bytes; a field this long is a broken file, not a book.
FIELD_SIZE_LIMIT = 1_000_000
_YEAR_BOUND = 1_000_000  # beyond any year rule; keeps int() of "1e999999" from running away


class SourceError(Exception):
    """The file cannot be imported at all (missing, unreadable, not UTF-8, wrong columns)."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: ``number`` counts data rows from 1, ``line`` is where it starts in the file.

    Either ``draft`` is set (possibly with ``warnings``: what was repaired or dropped), or
    ``rejection`` says why the row cannot be a book.
    """

    number: int
    line: int
    raw: str
    draft: BookDraft | None = None
    rejection: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def check_utf8(path: Path) -> None:
    """SourceError naming the first line that is not valid UTF-8."""
    with _open(path) as stream:
        for number, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{path}: line {number} is not valid UTF-8 "
                    f"(byte 0x{line[exc.start]:02x} at column {exc.start + 1}); "
                    "save the file as UTF-8 and try again"
                ) from None


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None


class _Lines:
    """The file's decoded lines, remembering those of the current row and the bytes read."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.current: list[str] = []
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self._stream:
            self.bytes_read += len(raw)
            line = raw.decode("utf-8")
            self.current.append(line)
            yield line

    def take(self) -> str:
        """The text of the row just read, without its line break."""
        text = "".join(self.current).rstrip("\r\n")
        self.current.clear()
        return text


class GoodbooksReader:
    """Streams the rows of a goodbooks ``books.csv``: the file is never held in memory."""

    def __init__(self, path: Path, *, now: datetime) -> None:
        self.path = path
        self.size = 0
        self._now = now
        self._lines: _Lines | None = None

    @property
    def bytes_read(self) -> int:
        return 0 if self._lines is None else self._lines.bytes_read

    def rows(self) -> Iterator[SourceRow]:
        """Check the encoding and the header, then yield every data row (blank lines skipped)."""
        check_utf8(self.path)
        with _open(self.path) as stream:
            self.size = self.path.stat().st_size
            lines = self._lines = _Lines(stream)
            csv.field_size_limit(FIELD_SIZE_LIMIT)
            reader = csv.reader(lines, strict=True)
            columns = self._header(reader, lines)
            positions = [columns.index(c) for c in REQUIRED_COLUMNS]
            number = 0
            while True:
                start = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    number += 1
                    yield SourceRow(
                        number=number, line=start, raw=lines.take(), rejection=f"bad CSV: {exc}"
                    )
                    continue
                raw = lines.take()
                if not fields:
                    continue
                number += 1
                if len(fields) != len(columns):
                    yield SourceRow(
                        number=number,
                        line=start,
                        raw=raw,
                        rejection=f"expected {len(columns)} fields, found {len(fields)}",
                    )
                    continue
                yield self._row(number, start, raw, [fields[i] for i in positions])

    def _header(self, reader: Iterator[list[str]], lines: _Lines) -> list[str]:
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{self.path}: the file is empty (no header line)") from None
        except csv.Error as exc:
            raise SourceError(f"{self.path}: line 1 is not a CSV header ({exc})") from None
        lines.take()
        columns = [c.strip().lstrip("\ufeff") for c in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise SourceError(
                f"{self.path}: missing column(s) {', '.join(missing)} in the header; "
                f"a goodbooks books.csv has {', '.join(REQUIRED_COLUMNS)}"
            )
        return columns

    def _row(self, number: int, line: int, raw: str, values: list[str]) -> SourceRow:
        """A row from its REQUIRED_COLUMNS values, in that order."""
        book_id, isbn_text, authors, year_text, title, language_text = values
        source_id = book_id.strip()
        if not (source_id.isascii() and source_id.isdigit() and len(source_id) <= 18):
            return SourceRow(
                number=number,
                line=line,
                raw=raw,
                rejection=f"book_id {source_id!r} is not a whole number: the source id is "
                "needed to recognise the book on a re-run",
            )
        warnings: list[str] = []
        isbn, warning = repair_isbn10(isbn_text)
        warnings += [warning] if warning else []
        year, warning = parse_year(year_text, now=self._now)
        warnings += [warning] if warning else []
        language, warning = parse_language(language_text)
        warnings += [warning] if warning else []
        draft = BookDraft(
            title=title,
            author_names=split_authors(authors),
            external_ref=f"{SOURCE}:{int(source_id)}",
            isbn=isbn,
            publication_year=year,
            language=language,
        )
        return SourceRow(number=number, line=line, raw=raw, draft=draft, warnings=tuple(warnings))


def normalise_name(name: str) -> str:
    """A credited name as authors are matched: NFC, trimmed, inner whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def split_authors(value: str) -> tuple[str, ...]:
    """The names of a credit list, in order, normalised, blanks and repeats left out."""
    names = (normalise_name(part) for part in value.split(","))
    return tuple(dict.fromkeys(n for n in names if n))


def repair_isbn10(value: str) -> tuple[str | None, str | None]:
    """(the ISBN-13, None), or (None, a warning) when the ISBN-10 cannot be repaired."""
    text = value.strip()
    if not text:
        return None, None
    padded = text.zfill(10) if len(text) < 10 else text
    try:
        return valid_isbn(padded), None
    except RuleViolationError:
        return None, f"isbn {text!r} is not a valid ISBN-10 even left-padded to {padded!r}; " + (
            "imported without an ISBN"
        )


def parse_year(value: str, *, now: datetime) -> tuple[int | None, str | None]:
    """(the year, None) from ``2008.0`` / ``-720.0``; (None, None) when empty; else a warning."""
    text = value.strip()
    if not text:
        return None, None
    whole = text.removesuffix(".0")
    if whole.lstrip("-").isdigit() and whole.isascii() and len(whole) <= 7:
        year: int | None = int(whole)  # the usual "2008.0"
    else:
        year = _whole_number(text)
    if year is None:
        return None, f"original_publication_year {text!r} is not a year; imported without one"
    try:
        return valid_publication_year(year, now=now), None
    except RuleViolationError as exc:
        return None, f"{exc.errors[0].msg}; imported without a year"


def _whole_number(text: str) -> int | None:
    """``text`` as an int if it is a whole number of sane size (``1.5e3``, ``-720.00``)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) > _YEAR_BOUND:
        return None
    if number != number.to_integral_value():
        return None
    return int(number)


def parse_language(value: str) -> tuple[str | None, str | None]:
    """(the normalised tag, None) or (None, None) when empty, or (None, a warning)."""
    text = value.strip()
    if not text:
        return None, None
    try:
        return valid_language(text), None
    except RuleViolationError:
        return None, f"language_code {text!r} is not a language code; imported without one"
