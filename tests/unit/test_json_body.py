"""JsonBody answers every body as FastAPI's own body parameter does (shared.web.api).

The POST routes read their body and Idempotency-Key themselves (a tenth of a POST's cost went
to FastAPI's dependency machinery). Here one app declares the body the FastAPI way and another
reads it with JsonBody, behind the same token check, and each request must get the same
answer from both: the same status, the same errors (type, location, message), the same value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from library.books.api.schemas import BookCreate
from shared.web.api import JsonBody, LeanRoute, RouteParameters, validated
from shared.web.http import IdempotencyKeyHeader

AUTHOR = "0b0e7a4e-3c55-4f9a-9a57-4d8c8c2a1f10"
BODY = JsonBody(BookCreate)
PARAMETERS = RouteParameters("/books", idempotency_key=IdempotencyKeyHeader)


class UnauthorizedError(Exception):
    pass


async def token(request: Request) -> str:
    if request.headers.get("authorization") != "Bearer ok":
        raise UnauthorizedError
    return "ok"


def _plain(body: BookCreate) -> Any:
    return json.loads(json.dumps(body.values(), default=str))


def _app(declared: bool) -> FastAPI:
    app = FastAPI()
    app.router.route_class = LeanRoute

    if declared:

        @app.post("/books")
        async def create(
            _: Annotated[str, Depends(token)],
            body: BookCreate,
            idempotency_key: IdempotencyKeyHeader = None,
        ) -> dict[str, Any]:
            return {"body": _plain(body), "key": idempotency_key}

    else:

        @app.post("/books")
        async def create_lean(request: Request) -> JSONResponse:
            read = await BODY.read(request)
            await token(request)
            params, body = validated(request, PARAMETERS, read)
            return JSONResponse({"body": _plain(body), "key": params["idempotency_key"]})

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [[e["type"], list(e["loc"]), e["msg"]] for e in exc.errors()]
        return JSONResponse({"errors": errors}, status_code=422)

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"refused": True}, status_code=401)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(UnauthorizedError, refused)
    app.add_exception_handler(HTTPException, http_error)
    return app


JSON = {"content-type": "application/json"}
VALID = f'{{"title": "Dune", "author_ids": ["{AUTHOR}"], "isbn": "0-441-17271-7"}}'.encode()

CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("valid", VALID, JSON),
    ("valid, spaces to trim", f'{{"title": "  Dune ", "author_ids": ["{AUTHOR}"]}}'.encode(), JSON),
    ("valid, charset", VALID, {"content-type": "application/json; charset=utf-8"}),
    ("valid, +json", VALID, {"content-type": "application/vnd.library+json"}),
    ("valid, with a key", VALID, {**JSON, "idempotency-key": "k-1"}),
    ("valid body, bad key", VALID, {**JSON, "idempotency-key": "with space"}),
    ("bad key and bad body", b'{"title": 3}', {**JSON, "idempotency-key": ""}),
    ("a field of the wrong type", b'{"title": 3, "author_ids": []}', JSON),
    ("an unknown field", VALID[:-1] + b', "extra": 1}', JSON),
    ("a missing field", b'{"author_ids": []}', JSON),
    ("not an object", b"[1, 2]", JSON),
    ("a string", b'"Dune"', JSON),
    ("null", b"null", JSON),
    ("broken JSON", b'{"title": ', JSON),
    ("NaN", b'{"title": "x", "author_ids": [], "publication_year": NaN}', JSON),
    ("a lone surrogate", b'{"title": "\\ud800", "author_ids": []}', JSON),
    ("not UTF-8", b'{"title": "\xff"}', JSON),
    ("empty", b"", JSON),
    ("no content type", VALID, {}),
    ("text/plain", VALID, {"content-type": "text/plain"}),
    ("a duplicate key", b'{"title": "a", "title": "b", "author_ids": []}', JSON),
    ("a huge number", b'{"title": "x", "author_ids": [], "publication_year": 1e400}', JSON),
]


@pytest.mark.parametrize("authorized", [True, False], ids=["token", "no token"])
@pytest.mark.parametrize(("body", "headers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_the_same_answer_as_fastapis_own_body(
    body: bytes, headers: dict[str, str], authorized: bool
) -> None:
    sent = {**headers, **({"authorization": "Bearer ok"} if authorized else {})}
    answers = []
    for declared in (True, False):
        transport = httpx.ASGITransport(app=_app(declared))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/books", content=body, headers=sent)
        answers.append((response.status_code, response.json()))
    assert answers[1] == answers[0]


async def test_the_fast_path_serves_a_valid_body() -> None:
    """The cases above compare answers; this one shows a valid body is read (not refused)."""
    transport = httpx.ASGITransport(app=_app(declared=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/books", content=VALID, headers={**JSON, "authorization": "Bearer ok"}
        )
    assert response.status_code == 200
    assert response.json()["body"]["title"] == "Dune"
    assert response.json()["body"]["isbn"] == "9780441172719"
