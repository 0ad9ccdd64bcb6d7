"""RFC 9457 problem details: the one place where errors become HTTP responses.

Unexpected exceptions are answered by ``shared.web.middleware`` (outermost, so that the 500 still
carries the request id), with ``internal_error_body``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from shared.kernel.errors import (
    ConflictError,
    DomainError,
    FieldError,
    GoneError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RuleViolationError,
    ServiceUnavailableError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_MEDIA_TYPE_BYTES = PROBLEM_MEDIA_TYPE.encode()
PROBLEM_TYPE_PREFIX = "urn:library:problem:"
RETRY_AFTER_SECONDS = "5"

log = structlog.stdlib.get_logger("library.errors")


class ProblemFieldError(BaseModel):
    """Where a field is and what is wrong with it."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(examples=["urn:library:problem:author-not-found"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request that failed.")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Present on validation errors: one entry per broken rule."
    )
    existing_id: str | None = Field(
        default=None,
        description="Present on a conflict with another resource (duplicate-isbn): its id.",
    )
    existing: str | None = Field(
        default=None,
        description="Present with existing_id: that resource's path (e.g. /api/v1/books/<id>).",
    )


_STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFoundError, 404),
    (GoneError, 410),
    (ConflictError, 409),
    (RuleViolationError, 422),
    (PreconditionFailedError, 412),
    (PreconditionRequiredError, 428),
    (ServiceUnavailableError, 503),
]

_DESCRIPTIONS = {
    401: "No bearer token, or an invalid or expired one (see WWW-Authenticate)",
    403: "The token lacks the scope this operation needs (see WWW-Authenticate)",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone for good: what the request names was deleted (e.g. by retention)",
    412: "Precondition failed: If-Match does not name the current version; nothing changed",
    413: "The request body is larger than the configured limit",
    422: "Validation error",
    429: "Too many requests from this client; retry after Retry-After seconds",
    428: "Precondition required: send If-Match with the ETag you read; nothing changed",
    503: "The database is unavailable; retry later",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the problems a route may answer."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response for ``request``; ``extensions`` are extension members (RFC 9457
    3.2) added after the standard ones."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}" if code else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    if extensions:
        body.update({k: v for k, v in extensions.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def http_problem_body(
    status: int, detail: str, path: str, *, code: str | None = None, title: str | None = None
) -> bytes:
    """A problem document for answers given outside the router: a plain HTTP one
    (``about:blank``), or of the API's type ``code``."""
    return json.dumps(
        {
            "type": f"{PROBLEM_TYPE_PREFIX}{code}" if code else "about:blank",
            "title": title or HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": path,
        }
    ).encode()


async def send_problem(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer a problem document from pure ASGI code (middleware), before any router."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _PROBLEM_MEDIA_TYPE_BYTES),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def internal_error_body(path: str) -> bytes:
    """The problem document of an unexpected error (no details leak to the client)."""
    return json.dumps(
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "An unexpected error occurred; it has been logged.",
            "instance": path,
        }
    ).encode()


_LOCATIONS = frozenset({"body", "query", "path", "header"})


def _field_errors(request: Request, errors: tuple[FieldError, ...]) -> list[dict[str, Any]]:
    """Domain errors name input fields: on HTTP, the body of a write, else the query string."""
    root = "body" if request.method in {"POST", "PUT", "PATCH"} else "query"
    return [
        {"loc": list(e.loc) if e.loc and e.loc[0] in _LOCATIONS else [root, *e.loc], "msg": e.msg}
        for e in errors
    ]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, DomainError):  # pragma: no cover - registered for this type only
        raise exc
    return domain_problem(request, exc)


def domain_problem(
    request: Request, exc: DomainError, extensions: dict[str, Any] | None = None
) -> JSONResponse:
    """The problem a domain error means (its status from its base class), with ``extensions``
    (members a context's API adds, e.g. the resource a conflict is with)."""
    status = next((s for cls, s in _STATUS_BY_ERROR if isinstance(exc, cls)), 400)
    return problem(
        request,
        status,
        exc.detail,
        code=exc.code,
        title=exc.title,
        errors=_field_errors(request, exc.errors) if exc.errors or status == 422 else None,
        headers={"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None,
        extensions=extensions,
    )


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(
        exc, RequestValidationError
    ):  # pragma: no cover - registered for this type only
        raise exc
    raw = exc.errors()
    if raw and all(_is_missing_if_match(err) for err in raw):
        # PATCH and DELETE are conditional-only (RFC 6585): the one thing missing is If-Match.
        return problem(
            request,
            428,
            "This request needs an If-Match header with the resource's ETag (GET it first), "
            "so that it cannot overwrite a change it has not seen.",
            code=PreconditionRequiredError.code,
            title=PreconditionRequiredError.title,
        )
    errors = [
        {
            "loc": [part for part in err.get("loc", ()) if isinstance(part, str | int)],
            "msg": str(err.get("msg", "")),
        }
        for err in raw
    ]
    return problem(
        request,
        422,
        "The request is not valid: see 'errors' for each problem.",
        code="validation-error",
        title="Invalid request",
        errors=errors,
    )


def _is_missing_if_match(err: Any) -> bool:
    loc = tuple(err.get("loc", ()))
    return (
        err.get("type") == "missing"
        and loc[:1] == ("header",)
        and str(loc[-1]).lower() == "if-match"
    )


# What FastAPI says when a body cannot even be read as text (not UTF-8): still bad input, 422.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(
        exc, StarletteHTTPException
    ):  # pragma: no cover - registered for this type only
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is no resource at {request.url.path}."
    if exc.status_code == 400 and detail == _UNPARSABLE_BODY:
        return problem(
            request,
            422,
            "The request body is not valid JSON text (it must be UTF-8 encoded JSON).",
            code="validation-error",
            title="Invalid request",
            errors=[{"loc": ["body"], "msg": "not UTF-8 encoded JSON"}],
        )
    if exc.status_code == 405:
        # Allow lists every method of the path, not only those of the first route matched.
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return problem(request, exc.status_code, detail, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (empty if none)."""
    paths = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            return sorted(method.upper() for method in operations)
    return []


def problem_openapi(app: FastAPI, schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document, with error schemas under application/problem+json (not JSON), and
    ``schemas`` among its components (those the routes' ``openapi_extra`` refer to)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
                        plain = content.pop("application/json", {})
                        content[PROBLEM_MEDIA_TYPE] = plain or content[PROBLEM_MEDIA_TYPE]
        if schemas:
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, extra in schemas.items():
                components.setdefault(name, extra)
            schema["components"]["schemas"] = dict(sorted(components.items()))
        app.openapi_schema = schema
    return app.openapi_schema


def install_problem_handlers(app: FastAPI, schemas: dict[str, Any] | None = None) -> None:
    """Answer every error of ``app`` with application/problem+json; ``schemas`` are component
    schemas the document needs beyond those FastAPI finds (see ``shared.web.api.QueryModel``)."""
    app.openapi = lambda: problem_openapi(app, schemas)  # type: ignore[method-assign]
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
