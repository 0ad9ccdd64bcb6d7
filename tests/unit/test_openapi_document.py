"""The committed openapi.json is the document the app serves, and reads well for client
generators: readable operationIds, the package's version, Link headers on pages."""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tools.openapi import openapi_text

ROOT = Path(__file__).resolve().parents[2]


@cache
def _served() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_text())
    return document


def test_the_committed_openapi_json_is_current() -> None:
    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_text(), (
        "openapi.json is not the document the app serves: run `make openapi` and commit it"
    )


def test_operation_ids_are_the_route_functions_names() -> None:
    paths = _served()["paths"]
    ids = {
        (method, path): operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
    }
    assert ids == {
        ("post", "/api/v1/books"): "create_book",
        ("get", "/api/v1/books"): "list_books",
        ("get", "/api/v1/changes"): "list_changes",
        ("get", "/api/v1/books/{book_id}"): "get_book",
        ("patch", "/api/v1/books/{book_id}"): "update_book",
        ("delete", "/api/v1/books/{book_id}"): "delete_book",
        ("get", "/api/v1/authors/{author_id}/books"): "list_author_books",
        ("post", "/api/v1/authors"): "create_author",
        ("get", "/api/v1/authors"): "list_authors",
        ("get", "/api/v1/authors/{author_id}"): "get_author",
        ("patch", "/api/v1/authors/{author_id}"): "update_author",
        ("delete", "/api/v1/authors/{author_id}"): "delete_author",
        ("get", "/health/live"): "live",
        ("get", "/health/ready"): "ready",
    }


def test_the_version_is_the_packages() -> None:
    assert _served()["info"]["version"] == version("library")


def test_every_list_documents_its_next_link() -> None:
    paths = _served()["paths"]
    for path in ("/api/v1/books", "/api/v1/authors", "/api/v1/authors/{author_id}/books"):
        assert "Link" in paths[path]["get"]["responses"]["200"]["headers"], path
