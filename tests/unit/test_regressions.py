"""Regressions: inputs that once gave a 500, a wrong answer, or a misleading document."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
from dependency_injector import providers

from library.authors.application.ports import AuthorsUnitOfWork
from library.authors.application.services import AuthorService
from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.kernel.errors import InvalidCursorError
from shared.kernel.pagination import decode_cursor
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS, bearer
from tests.fakes import FakeAuthorsUnitOfWork, FakeBookCatalog


class BrokenCatalog(FakeBookCatalog):
    async def author_has_books(self, author_id: uuid.UUID) -> bool:
        raise RuntimeError("unexpected failure")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    container = RootContainer()
    container.settings.override(
        providers.Object(
            Settings(
                database_url="postgresql+asyncpg://u@localhost/u",
                log_format="json",
                **AUTH_SETTINGS,
            )
        )
    )
    container.authors.service.override(
        providers.Object(
            AuthorService(
                uow=cast(AuthorsUnitOfWork, FakeAuthorsUnitOfWork()), books=BrokenCatalog()
            )
        )
    )
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer()
    ) as c:
        yield c


def test_a_deeply_nested_cursor_is_an_invalid_cursor() -> None:
    token = (
        base64.urlsafe_b64encode(b"[" * 1536).decode().rstrip("=")
    )  # 2048 chars: the API's max_length
    with pytest.raises(InvalidCursorError):
        decode_cursor(token, "authors:name", 2)


async def test_a_deeply_nested_cursor_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    token = base64.urlsafe_b64encode(b"[" * 1536).decode().rstrip("=")
    response = await client.get("/api/v1/authors", params={"cursor": token})
    assert response.status_code == 422


async def test_a_500_still_carries_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.delete(
        f"/api/v1/authors/{uuid.uuid4()}", headers={"X-Request-ID": "trace-me", "If-Match": '"1"'}
    )
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == "trace-me"


async def test_openapi_gives_the_problem_schema_under_problem_json(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for status in ("404", "422"):
        content = spec["paths"]["/api/v1/books/{book_id}"]["get"]["responses"][status]["content"]
        assert content["application/problem+json"].get("schema") == {
            "$ref": "#/components/schemas/Problem"
        }
        assert "application/json" not in content


async def test_a_name_of_300_composed_characters_sent_decomposed_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/authors", json={"name": "e\u0301" * 300})
    assert response.status_code == 201, response.text


async def test_a_json_boolean_is_not_a_year(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/authors", json={"name": "Bool", "birth_year": True})
    assert response.status_code == 422, response.text


async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.request("OPTIONS", f"/api/v1/books/{uuid.uuid4()}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert (await client.put("/api/v1/authors")).headers["allow"] == "GET, POST"


async def test_a_body_that_is_not_utf8_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/authors", content=b"/\xd7A+0", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("limit", ["1.0", "1e1", " 5", "0x10"])
async def test_an_integer_query_parameter_is_digits_only(
    client: httpx.AsyncClient, limit: str
) -> None:
    response = await client.get("/api/v1/authors", params={"limit": limit})
    assert response.status_code == 422


def test_the_app_is_built_without_touching_the_database() -> None:
    """The engine and the read pool belong to the lifespan: building the app (as the OpenAPI
    export and the unit tests do) needs no database, not even a configured one."""
    container = RootContainer()
    container.settings.override(providers.Object(Settings(database_url=None, **AUTH_SETTINGS)))
    app = create_app(container=container)
    assert "/api/v1/books/{book_id}" in app.openapi()["paths"]
