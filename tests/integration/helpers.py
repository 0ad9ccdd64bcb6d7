"""Small helpers for the HTTP tests: create resources, check problem documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import bearer

API = "/api/v1"


async def create_author(
    client: httpx.AsyncClient, name: str = "Ursula K. Le Guin", **fields: Any
) -> dict[str, Any]:
    response = await client.post(f"{API}/authors", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_book(
    client: httpx.AsyncClient, title: str, author_ids: list[str], **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/books", json={"title": title, "author_ids": author_ids, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and problem type ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if code is not None:
        assert body["type"] == f"urn:library:problem:{code}"
    return body


def error_locs(body: dict[str, Any]) -> list[list[str | int]]:
    return [error["loc"] for error in body["errors"]]


async def if_match(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    """An If-Match header naming the resource's current ETag (read with a GET).

    For a resource that does not exist, a made-up tag: the write answers 404 (or 422) anyway.
    """
    response = await client.get(url)
    return {"If-Match": response.headers.get("ETag", '"1"')}


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app (lifespan included) and an in-process client."""
    container = RootContainer()
    container.settings.override(settings)
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as http:
            yield app, http
