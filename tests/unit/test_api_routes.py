"""The HTTP API through the real app, with the use cases on in-memory fakes (no database).

The container's service providers are overridden and the lifespan is never run, so no engine
is ever created: every request is served by the routers, the middleware and the problem
handlers of the real application.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from dependency_injector import providers
from fastapi import FastAPI

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.queries import AuthorQueries
from library.authors.application.services import AuthorService
from library.books.application.ports import BooksUnitOfWork
from library.books.application.queries import BookQueries
from library.books.application.services import BookService
from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS, bearer
from tests.fakes import (
    FakeAuthorDirectory,
    FakeAuthorReader,
    FakeAuthorsUnitOfWork,
    FakeBookCatalog,
    FakeBookReader,
    FakeBooksUnitOfWork,
)
from tests.integration.helpers import if_match

API = "/api/v1"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"
HEX32 = re.compile(r"[0-9a-f]{32}")


class SharedAuthorDirectory(FakeAuthorDirectory):
    """The books' view of the authors: the names the authors' fake store holds right now."""

    def __init__(self, authors: FakeAuthorsUnitOfWork) -> None:
        super().__init__()
        self._authors = authors

    async def names_of(self, author_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        self.names = {a.id: a.name for a in self._authors.store.values()}
        return await super().names_of(author_ids)


class SharedBookCatalog(FakeBookCatalog):
    """The authors' view of the books: who the books' fake store credits right now."""

    def __init__(self, books: FakeBooksUnitOfWork) -> None:
        super().__init__()
        self._books = books

    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        self.credited = {a for b in self._books.store.values() for a in b.author_ids}
        return await super().author_has_books(author_id)


@dataclass
class Api:
    client: httpx.AsyncClient
    authors: FakeAuthorsUnitOfWork
    books: FakeBooksUnitOfWork

    async def create_author(self, name: str = "Ursula K. Le Guin", **fields: Any) -> dict[str, Any]:
        response = await self.client.post(f"{API}/authors", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def create_book(self, title: str, author_ids: list[str], **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"{API}/books", json={"title": title, "author_ids": author_ids, **fields}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@dataclass
class _Built:
    app: FastAPI
    authors: FakeAuthorsUnitOfWork
    books: FakeBooksUnitOfWork


@pytest.fixture(scope="module")
def built() -> Iterator[_Built]:
    """The app on in-memory fakes, built once per module (its routes cost 0.1 s to build); each
    test empties the fakes (``api``)."""
    authors_uow = FakeAuthorsUnitOfWork()
    books_uow = FakeBooksUnitOfWork(
        names=lambda: {a.id: a.name for a in authors_uow.store.values()}
    )
    container = RootContainer()
    container.settings.override(
        providers.Object(
            Settings(
                database_url="postgresql+asyncpg://unused@localhost/unused",
                log_format="json",
                **AUTH_SETTINGS,
            )
        )
    )
    container.authors.service.override(
        providers.Object(
            AuthorService(
                uow=cast(AuthorsUnitOfWork, authors_uow),
                books=SharedBookCatalog(books_uow),
                clock=lambda: NOW,
            )
        )
    )
    container.books.service.override(
        providers.Object(
            BookService(
                uow=cast(BooksUnitOfWork, books_uow),
                authors=SharedAuthorDirectory(authors_uow),
                clock=lambda: NOW,
            )
        )
    )
    container.authors.queries.override(
        providers.Object(AuthorQueries(FakeAuthorReader(authors_uow)))
    )
    container.books.queries.override(
        providers.Object(BookQueries(FakeBookReader(books_uow), SharedAuthorDirectory(authors_uow)))
    )
    try:
        yield _Built(create_app(container=container), authors_uow, books_uow)
    finally:
        container.books.queries.reset_override()
        container.authors.queries.reset_override()
        container.books.service.reset_override()
        container.authors.service.reset_override()
        container.settings.reset_override()


@pytest.fixture
async def api(built: _Built) -> AsyncIterator[Api]:
    # Empty stores and counters in the same objects the app's services and readers hold.
    authors_uow, books_uow = built.authors, built.books
    authors_uow.__init__()  # type: ignore[misc]
    books_uow.__init__(names=lambda: {a.id: a.name for a in authors_uow.store.values()})  # type: ignore[misc]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=built.app), base_url="http://test", headers=bearer()
    ) as client:
        yield Api(client=client, authors=authors_uow, books=books_uow)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document about the request that was made."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def error_locs(body: dict[str, Any]) -> list[list[str | int]]:
    errors = body["errors"]
    assert errors, "a validation problem lists at least one error"
    for error in errors:
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert error["msg"]
    return [error["loc"] for error in errors]


# --- create and read ----------------------------------------------------------------------


async def test_creating_an_author_answers_201_with_its_location(api: Api) -> None:
    response = await api.client.post(
        f"{API}/authors", json={"name": "  Ursula K. Le Guin ", "birth_year": 1929}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Ursula K. Le Guin"
    assert created["version"] == 1
    location = response.headers["location"]
    assert httpx.URL(location).path == f"{API}/authors/{created['id']}"
    fetched = await api.client.get(location)
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_creating_a_book_answers_201_with_its_location_and_named_authors(api: Api) -> None:
    lem = await api.create_author("Stanisław Lem")
    le_guin = await api.create_author("Ursula K. Le Guin")
    response = await api.client.post(
        f"{API}/books",
        json={
            "title": "Anthology",
            "author_ids": [le_guin["id"], lem["id"]],
            "isbn": "0-306-40615-2",
            "language": "eng",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["authors"] == [
        {"id": le_guin["id"], "name": "Ursula K. Le Guin"},
        {"id": lem["id"], "name": "Stanisław Lem"},
    ]
    assert (created["isbn13"], created["language"]) == ("9780306406157", "en")
    location = response.headers["location"]
    assert httpx.URL(location).path == f"{API}/books/{created['id']}"
    fetched = await api.client.get(location)
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_a_book_crediting_an_unknown_author_is_refused(api: Api) -> None:
    ghost = str(uuid.uuid4())
    response = await api.client.post(
        f"{API}/books", json={"title": "Haunted", "author_ids": [ghost]}
    )
    body = assert_problem(response, 422)
    assert ["body", "author_ids"] in error_locs(body)
    assert ghost in body["detail"]
    assert api.books.store == {}


async def test_a_duplicate_isbn_is_a_409_problem(api: Api) -> None:
    author = await api.create_author()
    await api.create_book("First", [author["id"]], isbn="978-0-306-40615-7")
    response = await api.client.post(
        f"{API}/books", json={"title": "Second", "author_ids": [author["id"]], "isbn": "0306406152"}
    )
    assert_problem(response, 409)
    assert len(api.books.store) == 1


@pytest.mark.parametrize("path", [f"{API}/authors/{{id}}", f"{API}/books/{{id}}"])
async def test_an_unknown_id_is_a_404_problem(api: Api, path: str) -> None:
    response = await api.client.get(path.format(id=uuid.uuid4()))
    body = assert_problem(response, 404)
    assert body["type"] != "about:blank"


async def test_the_books_of_an_unknown_author_are_a_404_problem(api: Api) -> None:
    assert_problem(await api.client.get(f"{API}/authors/{uuid.uuid4()}/books"), 404)


async def test_an_authors_books_are_listed(api: Api) -> None:
    author = await api.create_author()
    other = await api.create_author("Someone Else")
    await api.create_book("Mine", [author["id"]])
    await api.create_book("Not Mine", [other["id"]])
    response = await api.client.get(f"{API}/authors/{author['id']}/books")
    assert response.status_code == 200
    assert [b["title"] for b in response.json()["items"]] == ["Mine"]


# --- partial updates ----------------------------------------------------------------------


async def test_patch_changes_only_the_fields_it_is_given(api: Api) -> None:
    author = await api.create_author("Octavia Butler", birth_year=1947, bio="Kindred")
    response = await api.client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": "Octavia E. Butler"},
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["name"], patched["birth_year"], patched["bio"]) == (
        "Octavia E. Butler",
        1947,
        "Kindred",
    )
    assert patched["version"] == 2


async def test_patch_with_an_explicit_null_clears_the_bio(api: Api) -> None:
    author = await api.create_author("Octavia E. Butler", birth_year=1947, bio="Kindred")
    response = await api.client.patch(
        f"{API}/authors/{author['id']}",
        json={"bio": None},
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["name"], patched["birth_year"], patched["bio"]) == (
        "Octavia E. Butler",
        1947,
        None,
    )


async def test_patch_without_changes_keeps_the_version(api: Api) -> None:
    author = await api.create_author("Octavia E. Butler", bio="Kindred")
    response = await api.client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": " Octavia E. Butler "},
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert api.authors.commits == 1


async def test_patch_with_a_null_name_is_a_422_problem(api: Api) -> None:
    author = await api.create_author("Kept Name")
    response = await api.client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": None},
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert ["body", "name"] in error_locs(assert_problem(response, 422))
    assert (await api.client.get(f"{API}/authors/{author['id']}")).json() == author


async def test_patch_of_a_book_keeps_absent_fields_and_null_clears_the_isbn(api: Api) -> None:
    author = await api.create_author()
    book = await api.create_book("Old", [author["id"]], isbn="9780306406157", publication_year=1974)
    response = await api.client.patch(
        f"{API}/books/{book['id']}",
        json={"title": "New"},
        headers=await if_match(api.client, f"{API}/books/{book['id']}"),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["title"], patched["isbn13"], patched["publication_year"]) == (
        "New",
        "9780306406157",
        1974,
    )
    assert patched["authors"] == book["authors"]
    cleared = (
        await api.client.patch(
            f"{API}/books/{book['id']}",
            json={"isbn": None},
            headers=await if_match(api.client, f"{API}/books/{book['id']}"),
        )
    ).json()
    assert (cleared["title"], cleared["isbn13"], cleared["version"]) == ("New", None, 3)


@pytest.mark.parametrize("field", ["title", "author_ids"])
async def test_patch_of_a_book_with_a_null_required_field_is_a_422_problem(
    api: Api, field: str
) -> None:
    author = await api.create_author()
    book = await api.create_book("Kept", [author["id"]])
    response = await api.client.patch(
        f"{API}/books/{book['id']}",
        json={field: None},
        headers=await if_match(api.client, f"{API}/books/{book['id']}"),
    )
    assert ["body", field] in error_locs(assert_problem(response, 422))
    assert (await api.client.get(f"{API}/books/{book['id']}")).json() == book


# --- request validation -------------------------------------------------------------------


async def test_an_unknown_body_field_is_a_422_naming_it(api: Api) -> None:
    for field in ("id", "version", "created_at", "nickname"):
        response = await api.client.post(
            f"{API}/authors", json={"name": "Mass Assignment", field: 7}
        )
        assert ["body", field] in error_locs(assert_problem(response, 422)), field
    assert api.authors.store == {}


async def test_an_unknown_field_in_a_patch_is_a_422_naming_it(api: Api) -> None:
    author = await api.create_author()
    response = await api.client.patch(
        f"{API}/authors/{author['id']}",
        json={"name": "Changed", "version": 9},
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert ["body", "version"] in error_locs(assert_problem(response, 422))
    assert (await api.client.get(f"{API}/authors/{author['id']}")).json() == author


MALFORMED_IDS = [
    ("GET", f"{API}/authors/not-a-uuid", "author_id"),
    ("PATCH", f"{API}/authors/123", "author_id"),
    ("DELETE", f"{API}/authors/not-a-uuid", "author_id"),
    ("GET", f"{API}/books/not-a-uuid", "book_id"),
    ("PATCH", f"{API}/books/0", "book_id"),
    ("DELETE", f"{API}/books/1234", "book_id"),
    ("GET", f"{API}/authors/not-a-uuid/books", "author_id"),
]


async def test_a_malformed_uuid_in_the_path_is_a_422_problem(api: Api) -> None:
    for method, path, param in MALFORMED_IDS:
        response = await api.client.request(method, path, json={} if method == "PATCH" else None)
        assert ["path", param] in error_locs(assert_problem(response, 422)), (method, path)


async def test_an_if_none_match_over_1000_characters_is_a_422_naming_the_header(
    api: Api,
) -> None:
    for path in (f"{API}/books/{uuid.uuid4()}", f"{API}/authors/{uuid.uuid4()}"):
        response = await api.client.get(path, headers={"If-None-Match": '"' + "1" * 1000 + '"'})
        assert ["header", "If-None-Match"] in error_locs(assert_problem(response, 422)), path


async def test_an_id_in_any_form_pydantic_reads_as_a_uuid_is_accepted(api: Api) -> None:
    """The ids are validated as FastAPI validates them: hyphens optional, a urn:uuid: prefix."""
    some_id = uuid.uuid4()
    for written in (some_id.hex, f"urn:uuid:{some_id}"):
        for path in (f"{API}/books/{written}", f"{API}/authors/{written}"):
            response = await api.client.get(path)
            assert str(some_id) in assert_problem(response, 404)["detail"], path


async def test_a_page_larger_than_100_is_a_422_problem(api: Api) -> None:
    for path in (f"{API}/authors", f"{API}/books"):
        assert (await api.client.get(path, params={"limit": 100})).status_code == 200, path
        response = await api.client.get(path, params={"limit": 101})
        assert ["query", "limit"] in error_locs(assert_problem(response, 422)), path


async def test_an_unknown_sort_is_a_422_problem(api: Api) -> None:
    response = await api.client.get(f"{API}/books", params={"sort": "bogus"})
    assert ["query", "sort"] in error_locs(assert_problem(response, 422))


async def test_a_reversed_year_range_is_a_422_problem(api: Api) -> None:
    response = await api.client.get(f"{API}/books", params={"year_from": 2001, "year_to": 2000})
    assert any(loc[-1] == "year_to" for loc in error_locs(assert_problem(response, 422)))


async def test_a_garbage_cursor_is_a_422_problem(api: Api) -> None:
    for path in (f"{API}/authors", f"{API}/books"):
        response = await api.client.get(path, params={"cursor": "garbage"})
        locs = error_locs(assert_problem(response, 422))
        assert any(loc[-1] == "cursor" for loc in locs), path


async def test_a_domain_rule_broken_in_the_body_is_a_422_naming_the_field(api: Api) -> None:
    response = await api.client.post(
        f"{API}/authors", json={"name": "Time Traveller", "birth_year": NOW.year + 1}
    )
    assert any(loc[-1] == "birth_year" for loc in error_locs(assert_problem(response, 422)))
    assert api.authors.store == {}


NOT_JSON_OBJECTS = [
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b"title=Dune", "application/x-www-form-urlencoded"),
    (b"just text", "text/plain"),
    (b'["a", "list"]', "application/json"),
]


async def test_a_book_body_that_is_not_a_json_object_is_a_422_problem(api: Api) -> None:
    for content, content_type in NOT_JSON_OBJECTS:
        response = await api.client.post(
            f"{API}/books", content=content, headers={"content-type": content_type}
        )
        error_locs(assert_problem(response, 422))
    assert api.books.store == {}


async def test_an_unknown_route_is_a_404_problem(api: Api) -> None:
    assert_problem(await api.client.get(f"{API}/nonexistent"), 404)


ERRORS = [
    ("GET", f"{API}/authors/{uuid.uuid4()}", 404),
    ("GET", f"{API}/books/{uuid.uuid4()}", 404),
    ("DELETE", f"{API}/books/{uuid.uuid4()}", 404),
    ("DELETE", f"{API}/authors/{uuid.uuid4()}", 404),
    ("GET", f"{API}/books?limit=0&sort=title", 422),
    ("GET", f"{API}/authors?cursor=nope", 422),
    ("GET", f"{API}/nonexistent/deeper", 404),
    ("PUT", f"{API}/authors", 405),
]


async def test_every_error_is_a_problem_about_its_request_path(api: Api) -> None:
    for method, path, status in ERRORS:
        response = await api.client.request(method, path, headers={"If-Match": '"1"'})
        body = assert_problem(response, status)
        assert "?" not in body["instance"], path


# --- delete -------------------------------------------------------------------------------


async def test_deleting_an_author_answers_204_with_no_body(api: Api) -> None:
    author = await api.create_author()
    response = await api.client.delete(
        f"{API}/authors/{author['id']}",
        headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.client.get(f"{API}/authors/{author['id']}"), 404)


async def test_deleting_a_book_answers_204_with_no_body(api: Api) -> None:
    author = await api.create_author()
    book = await api.create_book("Short-lived", [author["id"]])
    response = await api.client.delete(
        f"{API}/books/{book['id']}", headers=await if_match(api.client, f"{API}/books/{book['id']}")
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.client.get(f"{API}/books/{book['id']}"), 404)


async def test_deleting_an_author_with_books_is_a_409_problem(api: Api) -> None:
    author = await api.create_author()
    book = await api.create_book("Keeps Its Author", [author["id"]])
    assert_problem(
        await api.client.delete(
            f"{API}/authors/{author['id']}",
            headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
        ),
        409,
    )
    assert (await api.client.get(f"{API}/authors/{author['id']}")).status_code == 200
    # Once the book is gone, so may the author be.
    assert (
        await api.client.delete(
            f"{API}/books/{book['id']}",
            headers=await if_match(api.client, f"{API}/books/{book['id']}"),
        )
    ).status_code == 204
    assert (
        await api.client.delete(
            f"{API}/authors/{author['id']}",
            headers=await if_match(api.client, f"{API}/authors/{author['id']}"),
        )
    ).status_code == 204


# --- lists --------------------------------------------------------------------------------


async def test_a_client_walks_every_author_page_by_page(api: Api) -> None:
    names = ["Carol", "Alice", "Eve", "Bob", "Dave"]
    for name in names:
        await api.create_author(name)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        response = await api.client.get(f"{API}/authors", params=params)
        assert response.status_code == 200
        page = response.json()
        seen += [a["name"] for a in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == sorted(names)


async def test_a_client_walks_every_book_page_by_page(api: Api) -> None:
    author = await api.create_author()
    titles = ["delta", "Alpha", "charlie", "Bravo", "echo"]
    for title in titles:
        await api.create_book(title, [author["id"]])
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2, "sort": "-title"}
    while True:
        page = (await api.client.get(f"{API}/books", params=params)).json()
        seen += [b["title"] for b in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == sorted(titles, reverse=True)


# --- request id ---------------------------------------------------------------------------


async def test_a_valid_request_id_is_echoed_on_success_and_error(api: Api) -> None:
    for path in (f"{API}/authors", f"{API}/authors/{uuid.uuid4()}", f"{API}/nonexistent"):
        response = await api.client.get(path, headers={"X-Request-ID": "client-42.retry:1_a"})
        assert response.headers["x-request-id"] == "client-42.retry:1_a", path


async def test_a_request_id_is_generated_when_absent(api: Api) -> None:
    first = await api.client.get(f"{API}/authors")
    second = await api.client.get(f"{API}/authors")
    assert HEX32.fullmatch(first.headers["x-request-id"])
    assert HEX32.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_an_invalid_request_id_is_replaced(api: Api) -> None:
    for bad in ("x" * 500, "has spaces", "semi;colon", "x" * 129):
        response = await api.client.get(f"{API}/authors", headers={"X-Request-ID": bad})
        assert HEX32.fullmatch(response.headers["x-request-id"]), bad


async def test_a_request_id_of_128_characters_is_kept(api: Api) -> None:
    rid = "r" * 128
    response = await api.client.get(f"{API}/authors", headers={"X-Request-ID": rid})
    assert response.headers["x-request-id"] == rid


# --- OpenAPI ------------------------------------------------------------------------------


async def test_openapi_documents_problem_responses_of_get_book(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    responses = response.json()["paths"][f"{API}/books/{{book_id}}"]["get"]["responses"]
    for status in ("404", "422"):
        assert PROBLEM in responses[status]["content"], status
    assert "200" in responses
