"""Every page that has a next one says where it is: ``Link: <...>; rel="next"`` (RFC 8288)."""

from __future__ import annotations

import re

import httpx

from tests.integration.helpers import API, create_author, create_book

_NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


async def _follow(client: httpx.AsyncClient, url: str) -> list[str]:
    """Every item's id, walking the pages by their Link headers only."""
    seen: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        link = response.headers.get("link")
        if page["next_cursor"] is None:
            assert link is None
            next_url = None
        else:
            match = _NEXT.match(link or "")
            assert match, link
            next_url = match.group(1)
            assert next_url.startswith(url.split("?")[0] + "?")
    assert pages > 1
    return seen


async def test_books_authors_and_an_authors_books_link_their_next_page(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client, "Linked Author")
    others = [await create_author(client, f"Author {i}") for i in range(4)]
    books = [await create_book(client, f"Linked {i}", [author["id"]]) for i in range(5)]
    book_ids = [b["id"] for b in books]

    assert await _follow(client, f"{API}/books?limit=2&sort=created_at") == book_ids
    # The other parameters are kept; a search's page links to the search's next page.
    assert await _follow(client, f"{API}/books?q=linked&sort=-created_at&limit=2") == list(
        reversed(book_ids)
    )
    assert await _follow(client, f"{API}/authors/{author['id']}/books?limit=2") == book_ids
    expected_authors = sorted([author, *others], key=lambda a: (a["name"], a["id"]))
    assert await _follow(client, f"{API}/authors?limit=2") == [a["id"] for a in expected_authors]


async def test_a_page_without_a_next_one_has_no_link(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/books", params={"limit": 100})
    assert response.status_code == 200
    assert "link" not in response.headers
