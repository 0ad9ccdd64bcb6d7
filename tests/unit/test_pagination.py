"""Opaque page cursors: what goes in comes out, and nothing else gets through."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kernel.errors import InvalidCursorError
from shared.kernel.pagination import (
    decode_cursor,
    encode_cursor,
    key_datetime,
    key_optional_int,
    key_str,
    key_uuid,
)

KIND = "books:title"
URL_SAFE = re.compile(r"[A-Za-z0-9_-]*")

key_values = st.one_of(st.text(max_size=30), st.integers(), st.none())
keys = st.lists(key_values, max_size=4)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_refused(token: str, kind: str = KIND, arity: int = 2) -> None:
    with pytest.raises(InvalidCursorError) as exc:
        decode_cursor(token, kind, arity)
    assert exc.value.errors[0].loc == ("cursor",)


# --- round trip ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), keys)
def test_a_cursor_decodes_to_the_key_it_was_made_of(kind: str, key: list[object]) -> None:
    token = encode_cursor(kind, key)
    assert decode_cursor(token, kind, len(key)) == key


@settings(max_examples=60, deadline=None)
@given(keys)
def test_a_cursor_can_be_put_in_a_url_as_it_is(key: list[object]) -> None:
    assert URL_SAFE.fullmatch(encode_cursor(KIND, key))


def test_cursors_for_different_positions_differ() -> None:
    first = encode_cursor(KIND, ["Alpha", str(uuid.uuid4())])
    second = encode_cursor(KIND, ["Bravo", str(uuid.uuid4())])
    assert first != second


# --- refused tokens -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), keys)
def test_a_cursor_of_another_kind_is_refused(kind: str, other: str, key: list[object]) -> None:
    if kind == other:
        other += "-other"
    assert_refused(encode_cursor(other, key), kind=kind, arity=len(key))


def test_a_cursor_of_another_ordering_names_the_problem() -> None:
    token = encode_cursor("books:-title", ["Alpha", str(uuid.uuid4())])
    with pytest.raises(InvalidCursorError) as exc:
        decode_cursor(token, "books:title", 2)
    assert "ordering" in exc.value.detail


@settings(max_examples=60, deadline=None)
@given(keys, st.integers(min_value=0, max_value=6))
def test_a_cursor_with_another_number_of_keys_is_refused(key: list[object], arity: int) -> None:
    if arity == len(key):
        arity += 1
    assert_refused(encode_cursor(KIND, key), arity=arity)


@settings(max_examples=100, deadline=None)
@given(st.lists(key_values, min_size=2, max_size=2), st.data())
def test_a_truncated_cursor_is_refused(key: list[object], data: st.DataObject) -> None:
    token = encode_cursor(KIND, key)
    cut = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    assert_refused(token[:cut])


@pytest.mark.parametrize("junk", ["x", "xx", "xxx", "!", "AAAA"])
def test_a_cursor_with_junk_appended_is_refused(junk: str) -> None:
    assert_refused(encode_cursor(KIND, ["Alpha", str(uuid.uuid4())]) + junk)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "not a cursor", "%%%%", "====", "é", "🙂🙂🙂🙂", "A", "null"],
)
def test_garbage_is_refused(token: str) -> None:
    assert_refused(token)


@pytest.mark.parametrize(
    "payload",
    [
        b"null",
        b"42",
        b'"books:title"',
        b'{"kind": "books:title", "key": ["Alpha", "x"]}',
        b'["books:title"]',
        b'["books:title", "Alpha"]',
        b'["books:title", ["Alpha", "x"], "extra"]',
        b"[]",
        b"\xff\xfe\x00garbage",
    ],
)
def test_base64_of_anything_but_our_list_is_refused(payload: bytes) -> None:
    assert_refused(b64(payload))


def test_the_same_payload_hand_made_is_accepted() -> None:
    # The refusals above are about the payload, not about who encoded it.
    key = ["Alpha", str(uuid.uuid4())]
    assert decode_cursor(b64(json.dumps([KIND, key]).encode()), KIND, 2) == key


# --- typed keys ---------------------------------------------------------------------------


def test_key_uuid_reads_a_uuid() -> None:
    value = uuid.uuid4()
    assert key_uuid(str(value)) == value


@pytest.mark.parametrize("raw", ["not-a-uuid", "", 42, None, ["x"], 1.5])
def test_key_uuid_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidCursorError):
        key_uuid(raw)


def test_key_str_reads_a_string() -> None:
    assert key_str("Alpha") == "Alpha"
    assert key_str("") == ""


@pytest.mark.parametrize("raw", [1, None, 1.5, True, ["Alpha"], {"a": 1}])
def test_key_str_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidCursorError):
        key_str(raw)


@pytest.mark.parametrize("raw", [1990, -500, 0, None])
def test_key_optional_int_reads_an_integer_or_null(raw: int | None) -> None:
    assert key_optional_int(raw) == raw


@pytest.mark.parametrize("raw", [True, False, 1990.0, "1990", ["1990"]])
def test_key_optional_int_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidCursorError):
        key_optional_int(raw)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_key_datetime_reads_an_aware_timestamp(value: datetime) -> None:
    read = key_datetime(value.isoformat())
    assert read == value  # the same instant...
    assert read.utcoffset() == timedelta(0)  # ...read back in UTC, as the database compares it


@pytest.mark.parametrize(
    "raw", ["2026-01-02T03:04:05", "yesterday", "", 1767322245, None, ["2026-01-02T03:04:05+00:00"]]
)
def test_key_datetime_refuses_naive_or_non_timestamps(raw: object) -> None:
    with pytest.raises(InvalidCursorError):
        key_datetime(raw)
