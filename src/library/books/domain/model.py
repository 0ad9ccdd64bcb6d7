"""The Book aggregate and its rules."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import langcodes
from langcodes.tag_parser import LanguageTagError
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError as StdnumValidationError

from shared.kernel.errors import RuleViolationError
from shared.kernel.values import UNSET, Unset, check_year, clean_text

TITLE_MAX_LENGTH = 500
MAX_AUTHORS = 50
LANGUAGE_MAX_LENGTH = 35  # the longest BCP 47 tag implementations must support
EXTERNAL_REF_MAX_LENGTH = 200


def valid_title(value: str) -> str:
    """A title: trimmed, NFC, 1-500 characters."""
    return clean_text("title", value, max_length=TITLE_MAX_LENGTH)


def _isbn10_check(digits: str) -> str:
    # Unrolled on the ASCII codes (48 is "0"; the weights 10..2 sum to 54): bulk imports call it.
    b = digits.encode("ascii")
    total = (
        (10 * b[0] + 9 * b[1] + 8 * b[2] + 7 * b[3] + 6 * b[4] + 5 * b[5] + 4 * b[6] + 3 * b[7])
        + 2 * b[8]
        - 48 * 54
    )
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _isbn13_check(digits: str) -> str:
    # The weights 1, 3, 1, 3, ... over twelve digits sum to 24.
    b = digits.encode("ascii")
    total = (
        b[0] + b[2] + b[4] + b[6] + b[8] + b[10] + 3 * (b[1] + b[3] + b[5] + b[7] + b[9] + b[11])
    ) - 48 * 24
    return str((10 - total % 10) % 10)


def _fast_isbn13(value: str) -> str | None:
    """The ISBN-13 of a compact, valid ISBN-10 or ISBN-13; None when ``value`` is not one.

    The common case (bulk imports: ten or thirteen bare digits) without stdnum's general parser.
    """
    if len(value) == 10 and value[:9].isdigit() and value[:9].isascii():
        if value[9] in "0123456789Xx" and value[9].upper() == _isbn10_check(value):
            core = "978" + value[:9]
            return core + _isbn13_check(core)
        return None
    if (
        len(value) == 13
        and value.isdigit()
        and value.isascii()
        and value[:3] in ("978", "979")
        and value[12] == _isbn13_check(value)
    ):
        return value
    return None


def valid_isbn(value: str) -> str:
    """The ISBN-13 of an ISBN-10 or ISBN-13 (hyphens and spaces allowed), check digit verified."""
    fast = _fast_isbn13(value)
    if fast is not None:
        return fast
    try:
        compact = stdnum_isbn.validate(value)
    except StdnumValidationError as exc:
        raise RuleViolationError.on_field(
            "isbn",
            f"{value!r} is not a valid ISBN-10 or ISBN-13: {str(exc).rstrip('.').lower()}",
        ) from None
    return stdnum_isbn.to_isbn13(compact)


@lru_cache(maxsize=4096)
def valid_language(value: str) -> str:
    """An ISO 639 / BCP 47 language tag in its normalised form (``eng`` and ``en`` -> ``en``)."""
    text = value.strip()
    if len(text) > LANGUAGE_MAX_LENGTH:
        raise RuleViolationError.on_field(
            "language", f"language must be at most {LANGUAGE_MAX_LENGTH} characters"
        )
    try:
        tag = langcodes.standardize_tag(text)
    except (LanguageTagError, ValueError):
        tag = None
    if tag is None or not langcodes.tag_is_valid(tag):
        raise RuleViolationError.on_field(
            "language", f"{value!r} is not an ISO 639 / BCP 47 language code (e.g. en, fr, en-GB)"
        )
    return tag


def valid_external_ref(value: str | None) -> str | None:
    """The identifier of the book in the catalog it was imported from (e.g. ``goodbooks:42``)."""
    if value is None:
        return None
    return clean_text("external_ref", value, max_length=EXTERNAL_REF_MAX_LENGTH)


def valid_publication_year(value: int | None, *, now: datetime) -> int | None:
    """A publication year: negative for BCE, not after next year."""
    return None if value is None else check_year("publication_year", value, latest=now.year + 1)


def valid_author_ids(values: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    """1-50 distinct author ids in credit order (the first is the primary author)."""
    if not 1 <= len(values) <= MAX_AUTHORS:
        raise RuleViolationError.on_field(
            "author_ids", f"a book needs between 1 and {MAX_AUTHORS} authors (got {len(values)})"
        )
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        raise RuleViolationError.on_field(
            "author_ids",
            f"author_ids lists the same author more than once: {', '.join(duplicates)}",
        )
    return tuple(values)


@dataclass(eq=False, kw_only=True)
class Book:
    """A book of the catalog, crediting its authors in order; ``version`` grows on each change."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    title: str
    author_ids: tuple[uuid.UUID, ...]
    isbn13: str | None = None
    publication_year: int | None = None
    language: str | None = None
    external_ref: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @classmethod
    def create(
        cls,
        *,
        title: str,
        author_ids: Sequence[uuid.UUID],
        isbn: str | None,
        publication_year: int | None,
        language: str | None,
        now: datetime,
        external_ref: str | None = None,
    ) -> Book:
        """A new book, after checking every rule.

        ``external_ref`` names the book in the catalog it was imported from; a re-import
        recognises the book by it (or by its ISBN).
        """
        return cls(
            title=valid_title(title),
            author_ids=valid_author_ids(author_ids),
            isbn13=None if isbn is None else valid_isbn(isbn),
            publication_year=valid_publication_year(publication_year, now=now),
            language=None if language is None else valid_language(language),
            external_ref=valid_external_ref(external_ref),
            created_at=now,
            updated_at=now,
        )

    def revise(
        self,
        *,
        title: str | Unset = UNSET,
        author_ids: Sequence[uuid.UUID] | Unset = UNSET,
        isbn: str | Unset | None = UNSET,
        publication_year: int | Unset | None = UNSET,
        language: str | Unset | None = UNSET,
        now: datetime,
    ) -> bool:
        """Apply the given changes (UNSET leaves a field as it is); True if anything changed."""
        before = (self.title, self.author_ids, self.isbn13, self.publication_year, self.language)
        after = (
            self.title if title is UNSET else valid_title(title),
            self.author_ids if author_ids is UNSET else valid_author_ids(author_ids),
            self.isbn13 if isbn is UNSET else (None if isbn is None else valid_isbn(isbn)),
            self.publication_year
            if publication_year is UNSET
            else valid_publication_year(publication_year, now=now),
            self.language
            if language is UNSET
            else (None if language is None else valid_language(language)),
        )
        if before == after:
            return False
        self.title, self.author_ids, self.isbn13, self.publication_year, self.language = after
        self.updated_at = now
        return True
