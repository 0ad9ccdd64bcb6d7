"""Keyset pagination shared by every list: pages, and opaque cursors that carry the last key."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from shared.kernel.errors import InvalidCursorError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Room for the longest key: a 500-character title of 4-byte characters, base64-encoded.
MAX_CURSOR_LENGTH = 4096
# The range of PostgreSQL's real (float4): beyond it a score cannot be compared.
_REAL_LARGEST = 3.4e38
_REAL_SMALLEST = 1.2e-38


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next one (None on the last page)."""

    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """An opaque, URL-safe token for the position after ``key`` in a list ordered by ``kind``."""
    # orjson writes what json.dumps(separators=(",", ":"), ensure_ascii=False) does, as UTF-8,
    # at a fraction of the cost (a page's cursor was 4% of a 50-book page in process).
    try:
        raw = orjson.dumps([kind, list(key)])
    except TypeError:  # what orjson does not write (an integer past 64 bits): the stdlib does
        raw = json.dumps([kind, list(key)], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, kind: str, arity: int) -> list[Any]:
    """The key inside ``token``; InvalidCursorError if it is not one of ours for this ordering."""
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        raise _invalid("the cursor is not one this service issued") from None
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and isinstance(decoded[1], list)
        and len(decoded[1]) == arity
    ):
        raise _invalid("the cursor is not one this service issued")
    if decoded[0] != kind:
        raise _invalid("the cursor belongs to another ordering; start again without a cursor")
    return list(decoded[1])


def _invalid(msg: str) -> InvalidCursorError:
    return InvalidCursorError.on_field("cursor", msg)


def key_uuid(raw: object) -> uuid.UUID:
    """A UUID read back from a cursor key."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise _invalid("the cursor is not one this service issued") from None


def key_str(raw: object) -> str:
    """A string read back from a cursor key: text PostgreSQL can hold (no NUL, and no lone
    surrogate, which JSON can escape but UTF-8 cannot encode)."""
    if not isinstance(raw, str) or "\x00" in raw:
        raise _invalid("the cursor is not one this service issued")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("the cursor is not one this service issued") from None
    return raw


def key_optional_int(raw: object) -> int | None:
    """A 32-bit integer or null read back from a cursor key."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and -(2**31) <= raw < 2**31:
        return raw
    raise _invalid("the cursor is not one this service issued")


def key_float(raw: object) -> float:
    """A number read back from a cursor key (a relevance or similarity score): one a ``real``
    (float4) can hold, since the score is compared as one."""
    if (
        isinstance(raw, int | float)
        and not isinstance(raw, bool)
        and math.isfinite(raw)
        and (raw == 0 or _REAL_SMALLEST <= abs(raw) <= _REAL_LARGEST)
    ):
        return float(raw)
    raise _invalid("the cursor is not one this service issued")


def key_datetime(raw: object) -> datetime:
    """A timezone-aware datetime (in UTC) read back from a cursor key."""
    try:
        value = datetime.fromisoformat(key_str(raw))
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid("the cursor is not one this service issued") from None
