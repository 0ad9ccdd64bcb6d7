"""Inputs crafted to break things get a 422 problem, never a 500."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.kernel.pagination import encode_cursor
from tests.integration.helpers import API, assert_problem, create_author, create_book, if_match


async def test_nul_characters_are_refused_everywhere_text_goes(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Plain")
    cases = [
        client.post(f"{API}/authors", json={"name": "a\u0000b"}),
        client.patch(
            f"{API}/authors/{author['id']}",
            json={"bio": "x\u0000y"},
            headers=await if_match(client, f"{API}/authors/{author['id']}"),
        ),
        client.post(f"{API}/books", json={"title": "a\u0000", "author_ids": [author["id"]]}),
        client.post(
            f"{API}/books", json={"title": "T", "author_ids": [author["id"]], "language": "\u0000"}
        ),
        client.get(f"{API}/authors", params={"q": "\u0000"}),
        client.get(f"{API}/books", params={"q": "a\u0000"}),
    ]
    for request in cases:
        assert_problem(await request, 422)
    assert (await client.get(f"{API}/authors/{author['id']}")).json() == author


async def test_forged_cursors_are_422(client: httpx.AsyncClient) -> None:
    some_id = str(uuid.uuid4())
    forged = {
        "publication_year": encode_cursor("books:publication_year", [10**30, some_id]),
        "created_at": encode_cursor("books:created_at", ["0001-01-01T00:00:00+14:00", some_id]),
        "-created_at": encode_cursor("books:-created_at", ["9999-12-31T23:59:59-14:00", some_id]),
        "title": encode_cursor("books:title", ["a\u0000", some_id]),
        "-title": encode_cursor("books:-title", [42, some_id]),
    }
    for sort, cursor in forged.items():
        response = await client.get(f"{API}/books", params={"sort": sort, "cursor": cursor})
        assert_problem(response, 422, "invalid-cursor")
    nul_name = encode_cursor("authors:name", ["a\u0000", some_id])
    assert_problem(
        await client.get(f"{API}/authors", params={"cursor": nul_name}), 422, "invalid-cursor"
    )
    deep = encode_cursor("authors:name", ["x", some_id])[:8] + "W" * 2000
    assert_problem(await client.get(f"{API}/authors", params={"cursor": deep}), 422)


async def test_the_longest_titles_still_page(client: httpx.AsyncClient) -> None:
    """A cursor holding a 500-character title of 4-byte characters is still accepted back."""
    author = await create_author(client, "Long Titles")
    titles = ["\U0001f4da" * 499 + "a", "\U0001f4da" * 499 + "b", "\U0001f4da" * 499 + "c"]
    for title in titles:
        await create_book(client, title, [author["id"]])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"sort": "title", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{API}/books", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(book["title"] for book in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == titles


# -- Property-based: no header, query parameter or cursor the API reads gives a 5xx ---------

# What a header can carry: latin-1 text (as servers decode it) without line breaks.
_LATIN1 = st.characters(max_codepoint=255, exclude_characters="\r\n")
_ANY_TEXT = st.text(max_size=40)
# Characters that look like digits, signs or quotes, ASCII or not: the superscripts are
# digits to str.isdigit() but not to int().
_LOOKALIKES = st.sampled_from([*'0123456789"*,W/ -+', "\u00b2", "\u00b3", "\u00b9", "\u00bd"])
_TAGLIKE = st.lists(_LOOKALIKES, max_size=12).map("".join)
# Entity-tag lists as If-Match and If-None-Match carry them, of digits and lookalikes.
_ENTITY_TAG = st.builds(
    lambda weak, text: f'{"W/" if weak else ""}"{text}"',
    st.booleans(),
    st.text(st.sampled_from("0123456789\u00b2\u00b3\u00b9"), min_size=1, max_size=4),
)
_ENTITY_TAGS = st.lists(_ENTITY_TAG, min_size=1, max_size=3).map(", ".join)
_HEADER_VALUE = st.text(_LATIN1, max_size=40) | _TAGLIKE
# Every header the API reads, each present or not.
_REQUEST_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": _ENTITY_TAGS | _HEADER_VALUE,
        "If-None-Match": _ENTITY_TAGS | _HEADER_VALUE,
        "Idempotency-Key": _HEADER_VALUE,
        "X-Request-ID": _HEADER_VALUE,
        "Authorization": _HEADER_VALUE | _HEADER_VALUE.map(lambda v: f"Bearer {v}"),
        "Content-Length": _HEADER_VALUE,
    },
)
_READ_PATHS = [
    "/authors",
    "/books",
    "/authors/00000000-0000-0000-0000-000000000000",
    "/books/00000000-0000-0000-0000-000000000000",
    "/authors/00000000-0000-0000-0000-000000000000/books",
]
_PARAMS = ["q", "limit", "cursor", "sort", "author_id", "language", "year_from", "year_to"]
_HOSTILE_TEXT = (
    _ANY_TEXT
    | _TAGLIKE
    | st.sampled_from(["\uff05", "\uff3f", "\uff3c", "\ufe6a", "\u2216", "%", "_", "\\", "1e309"])
    | st.integers().map(str)
    | st.sampled_from(["\u00b2", "\u0663", "\uff11", "1\u00b2"])
)


def _assert_not_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (
        response.request.method,
        response.request.url,
        response.text,
    )
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(_READ_PATHS),
    headers=_REQUEST_HEADERS,
    params=st.dictionaries(st.sampled_from(_PARAMS), _HOSTILE_TEXT, max_size=4),
)
async def test_no_header_or_parameter_of_a_read_gives_a_5xx(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], params: dict[str, str]
) -> None:
    raw_headers = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    _assert_not_5xx(await client.get(f"{API}{path}", params=params, headers=raw_headers))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["PATCH", "DELETE", "POST"]),
    headers=_REQUEST_HEADERS,
)
async def test_no_header_of_a_write_gives_a_5xx(
    client: httpx.AsyncClient, method: str, headers: dict[str, str]
) -> None:
    url = f"{API}/authors" if method == "POST" else f"{API}/authors/{uuid.uuid4()}"
    raw_headers = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    body = {"name": "Hostile"} if method != "DELETE" else None
    _assert_not_5xx(await client.request(method, url, json=body, headers=raw_headers))


_BOOK_SORTS = [
    "relevance",
    "title",
    "-title",
    "publication_year",
    "-publication_year",
    "created_at",
    "-created_at",
]
_KEY_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from([1e300, -1e300, 3.5e38, 1e-300, 2**31, -(2**31) - 1])
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "a\udfff", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"])
    | st.lists(st.integers(), max_size=2)
)


def _raw_cursor(kind: str, key: list[object]) -> str:
    """A cursor as ``encode_cursor`` makes one, but able to hold what JSON can escape (lone
    surrogates included) and numbers no page ever had."""
    raw = json.dumps([kind, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sort=st.sampled_from([*_BOOK_SORTS, "authors"]),
    value=_KEY_VALUES,
    key_id=st.uuids().map(str) | _KEY_VALUES,
    q=st.sampled_from([None, "tolkien", "ab"]),
)
async def test_mutated_cursors_are_never_a_5xx(
    client: httpx.AsyncClient, sort: str, value: object, key_id: object, q: str | None
) -> None:
    params: dict[str, str] = {} if q is None else {"q": q}
    if sort == "authors":
        kind = "authors:name" if q is None else "authors:match"
        url = f"{API}/authors"
    else:
        kind, url = f"books:{sort}", f"{API}/books"
        params["sort"] = sort
        if sort == "relevance":
            params["q"] = q or "tolkien"
    params["cursor"] = _raw_cursor(kind, [value, key_id])
    _assert_not_5xx(await client.get(url, params=params))


@pytest.mark.parametrize("wildcard", ["\uff05", "\ufe6a", "\uff3f", "\uff3c", "\u2216"])
async def test_compatibility_forms_of_wildcards_are_literal(
    client: httpx.AsyncClient, wildcard: str
) -> None:
    """Fullwidth and small forms of %, _ and \\ fold to them in the search key (accents and
    compatibility forms are ignored): they still match only themselves, never as wildcards or
    escapes. (The queries are chosen so that no word or typo match finds "Plain" either.)"""
    author = await create_author(client, "Plain Name")
    await create_book(client, "Plain title", [author["id"]])
    for path in ("/authors", "/books"):
        for q in (wildcard, f"la{wildcard}n", f"la{wildcard}in", wildcard * 3):
            response = await client.get(f"{API}{path}", params={"q": q})
            assert response.status_code == 200, response.text
            assert response.json()["items"] == [], (path, q)
    literal = await create_author(client, f"Fifty{wildcard}off")
    await create_book(client, f"Fifty{wildcard}off", [literal["id"]])
    for path in ("/authors", "/books"):
        response = await client.get(f"{API}{path}", params={"q": f"y{wildcard}o"})
        assert [item["id"] for item in response.json()["items"]] != [], (path, wildcard)


async def test_cursors_the_database_cannot_hold_are_invalid_cursors(
    client: httpx.AsyncClient,
) -> None:
    some_id = str(uuid.uuid4())
    forged = [
        (f"{API}/books", {"sort": "title"}, _raw_cursor("books:title", ["\ud800", some_id])),
        (f"{API}/books", {"sort": "-title"}, _raw_cursor("books:-title", ["a\udfff", some_id])),
        (f"{API}/authors", {}, _raw_cursor("authors:name", ["\udc00", some_id])),
        (
            f"{API}/books",
            {"q": "tolkien"},
            _raw_cursor("books:relevance", [1e300, some_id]),
        ),
        (
            f"{API}/books",
            {"q": "tolkien"},
            _raw_cursor("books:relevance", [1e-300, some_id]),
        ),
    ]
    for url, params, cursor in forged:
        response = await client.get(url, params={**params, "cursor": cursor})
        assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize("tag", ["\u00b2", "\u00b3", "\u00b9", "1\u00b2"])
async def test_if_match_with_digit_lookalikes_matches_nothing(
    client: httpx.AsyncClient, tag: str
) -> None:
    author = await create_author(client, "Lookalike")
    url = f"{API}/authors/{author['id']}"
    header = f'"{tag}"'.encode("latin-1")
    response = await client.patch(url, json={"bio": "x"}, headers=[(b"if-match", header)])
    assert_problem(response, 412, "precondition-failed")
    response = await client.get(url, headers=[(b"if-none-match", header)])
    assert response.status_code == 200
