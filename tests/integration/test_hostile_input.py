"""Inputs crafted to break things get a 422 problem, never a 500."""

from __future__ import annotations

import uuid

import httpx

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
