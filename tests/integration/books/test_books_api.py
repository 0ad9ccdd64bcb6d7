"""The books' HTTP contract, end to end on the real app and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.helpers import (
    API,
    assert_problem,
    create_author,
    create_book,
    error_locs,
    if_match,
)


@pytest.fixture
async def authors(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [
        await create_author(client, name)
        for name in ("Terry Pratchett", "Neil Gaiman", "Josh Kirby")
    ]


async def test_create_returns_201_location_and_authors_in_credit_order(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    ids = [authors[1]["id"], authors[0]["id"], authors[2]["id"]]
    response = await client.post(
        f"{API}/books",
        json={
            "title": " Good Omens ",
            "author_ids": ids,
            "isbn": "0-575-04800-X",
            "publication_year": 1990,
            "language": "eng",
        },
    )
    assert response.status_code == 201, response.text
    book = response.json()
    assert response.headers["location"] == f"{API}/books/{book['id']}"
    assert book["title"] == "Good Omens"
    assert book["isbn13"] == "9780575048003"
    assert book["language"] == "en"
    assert book["publication_year"] == 1990
    assert book["version"] == 1
    assert book["authors"] == [
        {"id": ids[0], "name": "Neil Gaiman"},
        {"id": ids[1], "name": "Terry Pratchett"},
        {"id": ids[2], "name": "Josh Kirby"},
    ]
    assert (await client.get(response.headers["location"])).json() == book


async def test_isbn_and_language_are_normalised(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a = [authors[0]["id"]]
    assert (await create_book(client, "T1", a, isbn="978 0 06 051275 0"))[
        "isbn13"
    ] == "9780060512750"
    assert (await create_book(client, "T2", a, isbn="0-439-02348-3"))["isbn13"] == "9780439023481"
    assert (await create_book(client, "T3", a, language="en_us"))["language"] == "en-US"
    assert (await create_book(client, "T4", a, language="fre"))["language"] == "fr"
    assert (await create_book(client, "T5", a, publication_year=-720))["publication_year"] == -720


async def test_invalid_books_get_422_naming_the_field(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a = authors[0]["id"]
    cases: list[tuple[dict[str, Any], list[str | int]]] = [
        ({"title": "", "author_ids": [a]}, ["body", "title"]),
        ({"title": "x" * 501, "author_ids": [a]}, ["body", "title"]),
        ({"title": "T", "author_ids": []}, ["body", "author_ids"]),
        ({"title": "T", "author_ids": [a, a]}, ["body", "author_ids"]),
        (
            {"title": "T", "author_ids": [str(uuid.uuid4()) for _ in range(51)]},
            ["body", "author_ids"],
        ),
        ({"title": "T", "author_ids": ["nope"]}, ["body", "author_ids", 0]),
        ({"title": "T", "author_ids": [a], "isbn": "0-575-04800-1"}, ["body", "isbn"]),
        ({"title": "T", "author_ids": [a], "isbn": "12345"}, ["body", "isbn"]),
        ({"title": "T", "author_ids": [a], "language": "klingon!"}, ["body", "language"]),
        ({"title": "T", "author_ids": [a], "publication_year": 9999}, ["body", "publication_year"]),
        ({"title": "T", "author_ids": [a], "isbn13": "9780575048003"}, ["body", "isbn13"]),
        ({"author_ids": [a]}, ["body", "title"]),
    ]
    for payload, loc in cases:
        body = assert_problem(await client.post(f"{API}/books", json=payload), 422)
        assert loc in error_locs(body), (payload, body)
    page = (await client.get(f"{API}/books")).json()
    assert page["items"] == []


async def test_unknown_author_ids_are_named_in_a_422(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    ghost1, ghost2 = str(uuid.uuid4()), str(uuid.uuid4())
    response = await client.post(
        f"{API}/books",
        json={"title": "Ghostwritten", "author_ids": [authors[0]["id"], ghost1, ghost2]},
    )
    body = assert_problem(response, 422, "unknown-authors")
    assert ghost1 in body["detail"]
    assert ghost2 in body["detail"]
    assert authors[0]["id"] not in body["detail"]
    assert ["body", "author_ids"] in error_locs(body)


async def test_the_same_isbn_twice_is_409(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a = [authors[0]["id"]]
    await create_book(client, "First", a, isbn="9780575048003")
    response = await client.post(
        f"{API}/books", json={"title": "Second", "author_ids": a, "isbn": "0-575-04800-X"}
    )
    assert_problem(response, 409, "duplicate-isbn")
    other = await create_book(client, "Third", a)
    patch = await client.patch(
        f"{API}/books/{other['id']}",
        json={"isbn": "978-0-575-04800-3"},
        headers=await if_match(client, f"{API}/books/{other['id']}"),
    )
    assert_problem(patch, 409, "duplicate-isbn")


async def test_the_duplicate_isbn_409_names_the_book_holding_it(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a = [authors[0]["id"]]
    holder = await create_book(client, "First", a, isbn="9780575048003")
    response = await client.post(
        f"{API}/books", json={"title": "Second", "author_ids": a, "isbn": "0-575-04800-X"}
    )
    body = assert_problem(response, 409, "duplicate-isbn")
    assert body["existing_id"] == holder["id"]
    assert body["existing"] == f"{API}/books/{holder['id']}"
    assert (await client.get(body["existing"])).json()["title"] == "First"
    other = await create_book(client, "Third", a)
    patch = await client.patch(
        f"{API}/books/{other['id']}",
        json={"isbn": "978-0-575-04800-3"},
        headers=await if_match(client, f"{API}/books/{other['id']}"),
    )
    body = assert_problem(patch, 409, "duplicate-isbn")
    assert (body["existing_id"], body["existing"]) == (holder["id"], f"{API}/books/{holder['id']}")


async def test_patch_replaces_authors_and_keeps_the_rest(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a, b, c = (x["id"] for x in authors)
    book = await create_book(client, "Reordered", [a, b], publication_year=2000, language="en")
    url = f"{API}/books/{book['id']}"
    response = await client.patch(
        url, json={"author_ids": [c, a]}, headers=await if_match(client, url)
    )
    assert response.status_code == 200
    body = response.json()
    assert [x["id"] for x in body["authors"]] == [c, a]
    assert (body["title"], body["publication_year"], body["language"], body["version"]) == (
        "Reordered",
        2000,
        "en",
        2,
    )
    cleared = (
        await client.patch(
            url,
            json={"publication_year": None, "language": None},
            headers=await if_match(client, url),
        )
    ).json()
    assert (cleared["publication_year"], cleared["language"], cleared["version"]) == (None, None, 3)
    assert (await client.get(url)).json() == cleared
    assert_problem(
        await client.patch(url, json={"author_ids": None}, headers=await if_match(client, url)), 422
    )
    assert_problem(
        await client.patch(url, json={"title": None}, headers=await if_match(client, url)), 422
    )
    assert_problem(
        await client.patch(
            url, json={"author_ids": [str(uuid.uuid4())]}, headers=await if_match(client, url)
        ),
        422,
        "unknown-authors",
    )
    assert_problem(
        await client.patch(url, json={"version": 99}, headers=await if_match(client, url)), 422
    )
    assert_problem(
        await client.patch(
            f"{API}/books/{uuid.uuid4()}",
            json={"title": "X"},
            headers=await if_match(client, f"{API}/books/{uuid.uuid4()}"),
        ),
        404,
        "book-not-found",
    )
    assert (await client.get(url)).json() == cleared
    unknown_book_and_authors = await client.patch(
        f"{API}/books/{uuid.uuid4()}",
        json={"author_ids": [str(uuid.uuid4())]},
        headers=await if_match(client, f"{API}/books/{uuid.uuid4()}"),
    )
    assert_problem(unknown_book_and_authors, 404, "book-not-found")


async def test_delete_is_204_then_404(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    book = await create_book(client, "Doomed", [authors[0]["id"]])
    url = f"{API}/books/{book['id']}"
    response = await client.delete(url, headers=await if_match(client, url))
    assert (response.status_code, response.content) == (204, b"")
    assert_problem(await client.get(url), 404, "book-not-found")
    assert_problem(await client.delete(url, headers=await if_match(client, url)), 404)
    assert_problem(
        await client.delete(
            f"{API}/books/not-a-uuid", headers=await if_match(client, f"{API}/books/not-a-uuid")
        ),
        422,
    )


async def test_filters_and_sorts(client: httpx.AsyncClient, authors: list[dict[str, Any]]) -> None:
    a, b, _ = (x["id"] for x in authors)
    await create_book(client, "Mort", [a], publication_year=1987, language="en")
    await create_book(client, "Coraline", [b], publication_year=2002, language="en-GB")
    await create_book(client, "Stardust", [b], publication_year=1999, language="fr")
    await create_book(client, "The Iliad", [a], publication_year=-750)
    await create_book(client, "Undated", [a])

    async def titles(**params: Any) -> list[str]:
        response = await client.get(f"{API}/books", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return [book["title"] for book in response.json()["items"]]

    assert await titles(q="STAR") == ["Stardust"]
    assert await titles(author_id=b) == ["Coraline", "Stardust"]
    assert await titles(language="eng") == ["Mort"]
    assert await titles(language="en-gb") == ["Coraline"]
    assert await titles(year_from=1990, year_to=2000) == ["Stardust"]
    assert await titles(year_to=0) == ["The Iliad"]
    assert await titles(sort="publication_year") == [
        "The Iliad",
        "Mort",
        "Stardust",
        "Coraline",
        "Undated",
    ]
    assert await titles(sort="-publication_year") == [
        "Coraline",
        "Stardust",
        "Mort",
        "The Iliad",
        "Undated",
    ]
    assert await titles(sort="-created_at") == [
        "Undated",
        "The Iliad",
        "Stardust",
        "Coraline",
        "Mort",
    ]
    assert await titles() == ["Mort", "Coraline", "Stardust", "The Iliad", "Undated"]
    by_title = await titles(sort="title")
    assert by_title == ["Coraline", "Mort", "Stardust", "The Iliad", "Undated"]
    assert await titles(sort="-title") == list(reversed(by_title))


async def test_a_book_is_found_by_its_isbn_in_any_accepted_form(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    a, b, _ = (x["id"] for x in authors)
    wanted = await create_book(client, "Good Omens", [a, b], isbn="9780575048003", language="en")
    await create_book(client, "Mort", [a], isbn="978-0-06-051275-0")
    await create_book(client, "Undated", [a])

    async def found(path: str = f"{API}/books", **params: Any) -> list[str]:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return [book["id"] for book in response.json()["items"]]

    for form in (
        "9780575048003",
        "978-0-575-04800-3",
        "057504800X",
        "0-575-04800-X",
        " 0 575 04800 x ",
    ):
        assert await found(isbn=form) == [wanted["id"]], form
    # Another valid ISBN that no book has: an empty page, not a 404.
    assert await found(isbn="9780439023481") == []
    # With other filters, every one must hold.
    assert await found(isbn="057504800X", author_id=b, language="eng") == [wanted["id"]]
    assert await found(isbn="057504800X", language="fr") == []
    assert await found(isbn="057504800X", q="omens") == [wanted["id"]]
    assert await found(isbn="057504800X", q="mort") == []
    assert await found(f"{API}/authors/{b}/books", isbn="0-575-04800-X") == [wanted["id"]]
    assert await found(f"{API}/authors/{b}/books", isbn="978-0-06-051275-0") == []
    for bad in ("0575048004", "12345", "isbn", "9" * 40):
        body = assert_problem(await client.get(f"{API}/books", params={"isbn": bad}), 422)
        assert error_locs(body) == [["query", "isbn"]], bad


async def test_bad_list_parameters_are_422(client: httpx.AsyncClient) -> None:
    for params in (
        {"sort": "rating"},
        {"limit": 101},
        {"limit": -1},
        {"cursor": "not-a-cursor"},
        {"author_id": "nope"},
        {"language": "not a language"},
        {"year_from": "soon"},
        {"year_from": 2000, "year_to": 1990},
    ):
        assert_problem(await client.get(f"{API}/books", params=params), 422)


async def test_a_cursor_is_bound_to_its_sort(
    client: httpx.AsyncClient, authors: list[dict[str, Any]]
) -> None:
    for i in range(3):
        await create_book(client, f"Book {i}", [authors[0]["id"]])
    page = (await client.get(f"{API}/books", params={"limit": 1, "sort": "title"})).json()
    assert page["next_cursor"]
    other_sort = await client.get(
        f"{API}/books", params={"cursor": page["next_cursor"], "sort": "-created_at"}
    )
    body = assert_problem(other_sort, 422, "invalid-cursor")
    assert ["query", "cursor"] in error_locs(body)
