"""Every input the API accepts is bounded by its schema (OWASP API4: no unbounded work)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Query

from library.books.api.schemas import BookListParams, BookSearchParams
from library.bootstrap.app import create_app
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS


def _spec() -> dict[str, Any]:
    app = create_app(
        Settings(
            database_url="postgresql+asyncpg://u@localhost/u", log_format="json", **AUTH_SETTINGS
        )
    )
    return app.openapi()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _unbounded(spec: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    schema = _resolve(spec, schema)
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        found += _unbounded(spec, option, where)
    kind = schema.get("type")
    if kind == "string" and not (
        "maxLength" in schema or "enum" in schema or schema.get("format") == "uuid"
    ):
        found.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(where)
        found += _unbounded(spec, schema.get("items", {}), f"{where}[]")
    if kind == "integer" and not ("maximum" in schema and "minimum" in schema):
        found.append(where)
    if kind == "object":
        for name, prop in schema.get("properties", {}).items():
            found += _unbounded(spec, prop, f"{where}.{name}")
    return found


def test_every_body_field_query_parameter_and_header_has_a_bound() -> None:
    spec = _spec()
    unbounded: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
                unbounded += _unbounded(spec, parameter["schema"], where)
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                unbounded += _unbounded(spec, media["schema"], f"{method.upper()} {path} body")
    assert unbounded == []


def test_the_page_size_is_capped() -> None:
    spec = _spec()
    for path in ("/api/v1/books", "/api/v1/authors", "/api/v1/authors/{author_id}/books"):
        limit = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == 100


def test_conditional_and_idempotent_answers_are_documented_per_route() -> None:
    paths = _spec()["paths"]
    for item in ("/api/v1/authors/{author_id}", "/api/v1/books/{book_id}"):
        assert "304" in paths[item]["get"]["responses"]
        for method in ("patch", "delete"):
            operation = paths[item][method]
            assert {"412", "428"} <= operation["responses"].keys(), (method, item)
            if_match = next(p for p in operation["parameters"] if p["name"] == "If-Match")
            assert if_match["required"] is True
    for item in ("/api/v1/authors", "/api/v1/books"):
        operation = paths[item]["post"]
        assert {"409", "413", "422", "503"} <= operation["responses"].keys()
        assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])


def test_the_lists_document_their_query_as_fastapi_documents_a_query_model() -> None:
    """The book lists parse their query string themselves (one pydantic call, see QueryModel);
    their document must be what FastAPI writes when it parses the same model itself."""
    reference = FastAPI()

    @reference.get("/api/v1/books")
    async def list_books(params: Annotated[BookSearchParams, Query()]) -> None:
        """Documented only."""

    @reference.get("/api/v1/authors/{author_id}/books")
    async def list_author_books(
        author_id: uuid.UUID, params: Annotated[BookListParams, Query()]
    ) -> None:
        """Documented only."""

    expected = reference.openapi()
    spec = _spec()
    for path in ("/api/v1/books", "/api/v1/authors/{author_id}/books"):
        # Commit-LSN, which every read documents (shared.web.http.document_commit_lsn), aside.
        ours = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] != "Commit-LSN"]
        assert ours == expected["paths"][path]["get"]["parameters"], path
        for parameter in ours:
            ref = parameter["schema"].get("anyOf", [{}])[0].get("$ref")
            if ref is not None:  # the enum it names is among our components
                name = ref.rsplit("/", 1)[-1]
                assert (
                    spec["components"]["schemas"][name] == (expected["components"]["schemas"][name])
                )
