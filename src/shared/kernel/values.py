"""Small framework-free building blocks that both contexts' domains use."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import Enum
from typing import Final, Literal

from shared.kernel.errors import RuleViolationError

EARLIEST_YEAR: Final = -9999

# What clean_text accepts, as JSON Schema patterns (ECMA 262 and Python regex alike), so that
# the OpenAPI document says it: no NUL anywhere, and for a required text at least one character
# that str.strip() keeps (whitespace: str.isspace()). Documentation only: clean_text decides.
_SPACE: Final = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN: Final = r"^[^\x00]*$"
NON_BLANK_TEXT_PATTERN: Final = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"
LANGUAGE_TAG_PATTERN: Final = rf"^[{_SPACE}]*[A-Za-z]{{1,8}}([-_][A-Za-z0-9]{{1,8}})*[{_SPACE}]*$"


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""A field a partial update leaves as it is (distinct from None, which clears it)."""
Unset = Literal[_Unset.UNSET]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def reject_nul(field: str, value: str) -> str:
    """``value`` unless it holds a NUL character, which PostgreSQL text cannot store."""
    if "\x00" in value:
        raise RuleViolationError.on_field(field, f"{field} must not contain NUL characters")
    return value


def search_text(value: str) -> str:
    """A search string ``q``: any text PostgreSQL can hold."""
    return reject_nul("q", value)


def clean_text(field: str, value: str, *, max_length: int, min_length: int = 1) -> str:
    """``value`` trimmed and in Unicode NFC; RuleViolationError if its length is out of bounds."""
    text = unicodedata.normalize("NFC", reject_nul(field, value).strip())
    if len(text) < min_length:
        raise RuleViolationError.on_field(field, f"{field} must not be empty")
    if len(text) > max_length:
        raise RuleViolationError.on_field(
            field, f"{field} must be at most {max_length} characters (got {len(text)})"
        )
    return text


def check_year(field: str, value: int, *, latest: int) -> int:
    """``value`` if it is a year between EARLIEST_YEAR (BCE is negative) and ``latest``."""
    if not EARLIEST_YEAR <= value <= latest:
        raise RuleViolationError.on_field(
            field, f"{field} must be between {EARLIEST_YEAR} and {latest} (got {value})"
        )
    return value
