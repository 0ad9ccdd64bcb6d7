"""The authors' HTTP contract, end to end on the real app and PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive, Scope, Send

from tests.auth import bearer
from tests.integration.helpers import (
    API,
    assert_problem,
    create_author,
    create_book,
    error_locs,
    if_match,
)


async def test_create_returns_201_with_location_and_the_stored_author(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"{API}/authors",
        json={"name": "  Victor Hugo  ", "birth_year": 1802, "death_year": 1885, "bio": "Poet."},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{API}/authors/{body['id']}"
    assert body["name"] == "Victor Hugo"
    assert (body["birth_year"], body["death_year"], body["bio"], body["version"]) == (
        1802,
        1885,
        "Poet.",
        1,
    )
    assert uuid.UUID(body["id"])
    assert body["created_at"] == body["updated_at"]
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_commit_happens_before_the_response_starts(app: FastAPI, engine: AsyncEngine) -> None:
    """When the status line leaves the server, another connection already sees the row."""
    visible_at_response_start: list[int] = []

    async def probe(scope: Scope, receive: Receive, send: Send) -> None:
        async def checking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                async with engine.connect() as conn:
                    count = await conn.scalar(text("SELECT count(*) FROM authors"))
                visible_at_response_start.append(int(count or 0))
            await send(message)

        await app(scope, receive, checking_send)

    transport = httpx.ASGITransport(app=probe)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer()
    ) as http:
        response = await http.post(f"{API}/authors", json={"name": "Committed First"})
    assert response.status_code == 201
    assert visible_at_response_start == [1]


async def test_invalid_authors_get_422_problems_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"name": "   "}, ["body", "name"]),
        ({"name": "x" * 301}, ["body", "name"]),
        ({"name": "A", "bio": "b" * 10_001}, ["body", "bio"]),
        ({"name": "A", "birth_year": "soon"}, ["body", "birth_year"]),
        ({"name": "A", "id": str(uuid.uuid4())}, ["body", "id"]),
        ({"name": "A", "version": 7}, ["body", "version"]),
        ({}, ["body", "name"]),
    ]
    for payload, loc in cases:
        body = assert_problem(
            await client.post(f"{API}/authors", json=payload), 422, "validation-error"
        )
        assert loc in error_locs(body), (payload, body)
    body = assert_problem(
        await client.post(
            f"{API}/authors", json={"name": "A", "birth_year": 1900, "death_year": 1800}
        ),
        422,
    )
    assert ["body", "death_year"] in error_locs(body)
    future = assert_problem(
        await client.post(f"{API}/authors", json={"name": "A", "birth_year": 9000}), 422
    )
    assert ["body", "birth_year"] in error_locs(future)


async def test_get_unknown_is_404_and_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/authors/{uuid.uuid4()}"), 404, "author-not-found")
    assert_problem(await client.get(f"{API}/authors/not-a-uuid"), 422, "validation-error")


async def test_patch_changes_only_the_given_fields_and_bumps_the_version(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client, "Mary Shelley", birth_year=1797, bio="Frankenstein")
    url = f"{API}/authors/{author['id']}"
    response = await client.patch(
        url, json={"death_year": 1851}, headers=await if_match(client, url)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["birth_year"], body["death_year"], body["bio"]) == (
        "Mary Shelley",
        1797,
        1851,
        "Frankenstein",
    )
    assert body["version"] == 2
    assert body["updated_at"] > author["updated_at"]
    cleared = (
        await client.patch(url, json={"bio": None}, headers=await if_match(client, url))
    ).json()
    assert (cleared["bio"], cleared["version"]) == (None, 3)
    unchanged = (await client.patch(url, json={}, headers=await if_match(client, url))).json()
    assert unchanged["version"] == 3
    assert (await client.get(url)).json() == unchanged


async def test_patch_rejects_bad_input_and_changes_nothing(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Jane Austen", birth_year=1775)
    url = f"{API}/authors/{author['id']}"
    assert_problem(
        await client.patch(url, json={"name": None}, headers=await if_match(client, url)), 422
    )
    assert_problem(
        await client.patch(url, json={"death_year": 1700}, headers=await if_match(client, url)), 422
    )
    assert_problem(
        await client.patch(
            url, json={"created_at": "2020-01-01T00:00:00Z"}, headers=await if_match(client, url)
        ),
        422,
    )
    assert_problem(
        await client.patch(
            f"{API}/authors/{uuid.uuid4()}",
            json={"name": "X"},
            headers=await if_match(client, f"{API}/authors/{uuid.uuid4()}"),
        ),
        404,
    )
    assert (await client.get(url)).json() == author


async def test_delete_is_204_then_404(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Ephemeral")
    url = f"{API}/authors/{author['id']}"
    response = await client.delete(url, headers=await if_match(client, url))
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(url), 404)
    assert_problem(await client.delete(url, headers=await if_match(client, url)), 404)


async def test_deleting_an_author_with_books_is_409_and_deletes_nothing(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client, "Credited")
    book = await create_book(client, "Still Here", [author["id"]])
    assert_problem(
        await client.delete(
            f"{API}/authors/{author['id']}",
            headers=await if_match(client, f"{API}/authors/{author['id']}"),
        ),
        409,
        "author-has-books",
    )
    assert (await client.get(f"{API}/authors/{author['id']}")).status_code == 200
    assert (await client.get(f"{API}/books/{book['id']}")).status_code == 200
    assert (
        await client.delete(
            f"{API}/books/{book['id']}", headers=await if_match(client, f"{API}/books/{book['id']}")
        )
    ).status_code == 204
    assert (
        await client.delete(
            f"{API}/authors/{author['id']}",
            headers=await if_match(client, f"{API}/authors/{author['id']}"),
        )
    ).status_code == 204


async def test_search_is_a_case_insensitive_literal_substring(client: httpx.AsyncClient) -> None:
    for name in [
        "J.R.R. Tolkien",
        "Christopher Tolkien",
        "100% Author",
        "1000 Authors",
        "a_b",
        "axb",
    ]:
        await create_author(client, name)

    async def names(q: str) -> set[str]:
        response = await client.get(f"{API}/authors", params={"q": q, "limit": 100})
        assert response.status_code == 200
        return {a["name"] for a in response.json()["items"]}

    assert await names("TOLKIEN") == {"J.R.R. Tolkien", "Christopher Tolkien"}
    assert await names("%") == {"100% Author"}
    assert await names("_") == {"a_b"}
    assert await names("nobody") == set()


async def test_pages_cover_every_author_once_in_name_order(client: httpx.AsyncClient) -> None:
    created = [await create_author(client, f"Author {i:02d}") for i in range(7)]
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/authors", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [a["name"] for a in seen] == sorted(a["name"] for a in created)
    assert len({a["id"] for a in seen}) == 7


async def test_list_parameters_are_validated(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/authors", params={"limit": 101}), 422)
    assert_problem(await client.get(f"{API}/authors", params={"limit": 0}), 422)
    assert_problem(
        await client.get(f"{API}/authors", params={"cursor": "garbage!"}), 422, "invalid-cursor"
    )
    default = (await client.get(f"{API}/authors")).json()
    assert default == {"items": [], "next_cursor": None}


async def test_author_books_lists_their_books_and_404s_for_unknown_authors(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client, "Prolific")
    other = await create_author(client, "Other")
    mine = [await create_book(client, f"Mine {i}", [author["id"]]) for i in range(3)]
    await create_book(client, "Not mine", [other["id"]])
    await create_book(client, "Shared", [other["id"], author["id"]])
    response = await client.get(f"{API}/authors/{author['id']}/books", params={"limit": 100})
    assert response.status_code == 200
    titles = [b["title"] for b in response.json()["items"]]
    assert titles == [b["title"] for b in mine] + ["Shared"]
    assert_problem(await client.get(f"{API}/authors/{uuid.uuid4()}/books"), 404, "author-not-found")
