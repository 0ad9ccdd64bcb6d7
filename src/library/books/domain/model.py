"""The Book aggregate and its rules."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import langcodes
from langcodes.tag_parser import LanguageTagError
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError as StdnumValidationError

from shared.errors import RuleViolationError
from shared.values import UNSET, Unset, check_year, clean_text

TITLE_MAX_LENGTH = 500
MAX_AUTHORS = 50
LANGUAGE_MAX_LENGTH = 35  # the longest BCP 47 tag implementations must support


def valid_title(value: str) -> str:
    """A title: trimmed, NFC, 1-500 characters."""
    return clean_text("title", value, max_length=TITLE_MAX_LENGTH)


def valid_isbn(value: str) -> str:
    """The ISBN-13 of an ISBN-10 or ISBN-13 (hyphens and spaces allowed), check digit verified."""
    try:
        compact = stdnum_isbn.validate(value)
    except StdnumValidationError as exc:
        raise RuleViolationError.on_field(
            "isbn",
            f"{value!r} is not a valid ISBN-10 or ISBN-13: {str(exc).rstrip('.').lower()}",
        ) from None
    return stdnum_isbn.to_isbn13(compact)


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
    ) -> Book:
        """A new book, after checking every rule."""
        return cls(
            title=valid_title(title),
            author_ids=valid_author_ids(author_ids),
            isbn13=None if isbn is None else valid_isbn(isbn),
            publication_year=valid_publication_year(publication_year, now=now),
            language=None if language is None else valid_language(language),
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
