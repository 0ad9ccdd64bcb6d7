"""HTTP edges shared by the routers: entity tags and conditional requests, Idempotency-Key.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at runtime.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Header, Request, Response
from pydantic import BaseModel

from shared.kernel.consistency import COMMIT_LSN_HEADER
from shared.kernel.events import Origin
from shared.kernel.idempotency import KEY_MAX_LENGTH, Idempotency
from shared.kernel.pagination import Page
from shared.kernel.preconditions import ANY_VERSION, IfMatch
from shared.web.api import JsonBody, RequestModel, RouteParameters, validated
from shared.web.auth import DEVELOPMENT_PRINCIPAL, Bearer, Principal
from shared.web.middleware import REQUEST_ID_KEY
from shared.web.responses import JsonResponse, json_bytes

# One entity tag of a list: "123", or W/"123" (weak); anything else matches nothing.
_ENTITY_TAG = re.compile(r'^(W/)?"([^"]*)"$')
_VERSION = re.compile(r"[0-9]{1,10}\Z")

IfMatchHeader = Annotated[
    str,
    Header(
        alias="If-Match",
        max_length=1000,
        description=(
            "Required: the ETag of the version you read (from GET, POST or a previous PATCH). "
            "Without it: 428. If the resource is no longer at that version: 412, and nothing "
            "changes. `*` accepts any version."
        ),
        examples=['"1"'],
    ),
]
IfNoneMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=1000,
        description="The ETag you hold: 304 without a body when it is still current.",
        examples=['"1"'],
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "A key you choose (1-255 visible ASCII characters, e.g. a UUID) to retry this POST "
            "safely for 24 hours: a repeat with the same key and body gets the first response "
            "again (with `Idempotent-Replayed: true`) and creates nothing; the same key with "
            "another body is 422; a repeat while the first is still running is 409."
        ),
        examples=["3f2b8a9e-5a0c-4d5e-9c1b-2a7e6f0d4c11"],
    ),
]

# Read-your-writes across a replica (docs/operations.md "Read replica"): the header as the
# OpenAPI document describes it, on every read (request) and every write (response).
COMMIT_LSN_PARAMETER: dict[str, Any] = {
    "name": COMMIT_LSN_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "The latest `Commit-LSN` a write of yours answered: this read then sees that write "
        "(and every earlier one), even when it is served by a replica, which waits up to "
        "LIBRARY_REPLICA_WAIT_MS to replay it, or the primary answers. Without it a read may "
        "be up to LIBRARY_REPLICA_MAX_LAG_MS behind. Not a WAL position: 400."
    ),
    "schema": {
        "type": "string",
        "maxLength": 17,
        "pattern": "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$",
        "title": "Commit-Lsn",
    },
    "example": "0/16B3F48",
}
COMMIT_LSN_RESPONSE_HEADER: dict[str, Any] = {
    "description": (
        "With a replica configured: the primary's WAL position after this write committed. "
        "Send it as `Commit-LSN` on your next reads to see this write."
    ),
    "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"},
}
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def document_commit_lsn(schema: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with Commit-LSN on the operations under ``prefix``: a
    request header of every GET (its 400 among the answers), a response header of every
    write's success. Idempotent: the document is built once and then kept."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            if method == "get":
                parameters = operation.setdefault("parameters", [])
                if all(p.get("name") != COMMIT_LSN_HEADER for p in parameters):
                    parameters.append(COMMIT_LSN_PARAMETER)
                responses = operation.setdefault("responses", {})
                if "400" not in responses:
                    responses["400"] = {
                        "description": "Bad Request: the Commit-LSN header is not a WAL position",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    }
                    operation["responses"] = dict(sorted(responses.items()))
            elif method in _WRITE_METHODS:
                for status, response in operation.get("responses", {}).items():
                    if status.startswith("2"):
                        headers = response.setdefault("headers", {})
                        headers.setdefault(COMMIT_LSN_HEADER, COMMIT_LSN_RESPONSE_HEADER)
    return schema


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag in If-None-Match is current (no body)."}
}


NEXT_PAGE: dict[str, Any] = {
    "Link": {
        "description": (
            'On every page that has a next one: `<path?...&cursor=...>; rel="next"` (RFC 8288), '
            "the same request with next_cursor as cursor."
        ),
        "schema": {"type": "string"},
    }
}


def page_response(request: Request, page: Page[Any]) -> Response:
    """A page serialised once, with a ``Link: <...>; rel="next"`` header when one follows: the
    request's own path and query with ``cursor`` set to the page's ``next_cursor``."""
    if page.next_cursor is None:
        return JsonResponse(page)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    query.append(("cursor", page.next_cursor))
    path = f"{request.scope.get('root_path', '')}{request.scope['path']}"
    return JsonResponse(page, headers={"Link": f'<{path}?{urlencode(query)}>; rel="next"'})


def etag(version: int) -> str:
    """The entity tag of a resource's version (strong: it changes with every change)."""
    return f'"{version}"'


def _entity_tags(value: str) -> list[tuple[bool, str]]:
    tags = []
    for part in value.split(","):
        match = _ENTITY_TAG.match(part.strip())
        if match:
            tags.append((match.group(1) is not None, match.group(2)))
    return tags


def parse_if_match(if_match: IfMatchHeader) -> IfMatch:
    """The versions If-Match accepts.

    The header is required: a request without it fails validation, and the problem handlers
    answer 428 when that is all that is wrong with it (``shared.web.problems``).
    """
    if if_match.strip() == "*":
        return ANY_VERSION
    # If-Match compares strongly (RFC 9110 13.1.1): weak tags never match.
    # Only ASCII digits are a version: str.isdigit() also accepts superscripts, which int() refuses.
    versions = {
        int(tag) for weak, tag in _entity_tags(if_match) if not weak and _VERSION.match(tag)
    }
    return IfMatch(versions=frozenset(v for v in versions if v < 2**31))


def not_modified(if_none_match: str | None, version: int) -> Response | None:
    """A 304 when If-None-Match names this version (weak comparison) or is ``*``."""
    if if_none_match is None:
        return None
    current = etag(version).strip('"')
    if if_none_match.strip() == "*" or any(
        tag == current for _, tag in _entity_tags(if_none_match)
    ):
        return Response(status_code=304, headers={"ETag": etag(version)})
    return None


def created(
    body: BaseModel | Mapping[str, object], *, location: str, version: int, replayed: bool = False
) -> Response:
    """A 201 with the new resource (a model, or a read model's plain dict serialised as the
    reads are), its Location and ETag; ``Idempotent-Replayed: true`` when it is the result an
    Idempotency-Key already had (the same response, built the same way, from that result)."""
    headers = {"Location": location, "ETag": etag(version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        content=body.model_dump_json() if isinstance(body, BaseModel) else json_bytes(body),
        status_code=201,
        headers=headers,
        media_type="application/json",
    )


class RoutePath:
    """The path of a named route with one parameter, e.g. a new resource's Location.

    ``request.url_for`` walks the routes and builds an absolute URL on each call; this resolves
    the route's path once, on first use, and after that only substitutes the value.
    """

    _MARK = "__value__"

    def __init__(self, name: str, parameter: str) -> None:
        self._name = name
        self._parameter = parameter
        self._parts: tuple[str, str] | None = None

    def __call__(self, request: Request, value: object) -> str:
        if self._parts is None:
            path = request.app.url_path_for(self._name, **{self._parameter: self._MARK})
            before, _, after = str(path).partition(self._MARK)
            self._parts = (before, after)
        before, after = self._parts
        return f"{request.scope.get('root_path', '')}{before}{value}{after}"


def idempotency(
    request: Request,
    key: str | None,
    body: RequestModel,
    *,
    principal: str,
) -> Idempotency | None:
    """The Idempotency-Key of this request with its fingerprint (None when the header is absent).

    The fingerprint is a hash of the validated body, so a retry that re-serialises the same
    values (other key order, other spacing) is still the same request. The key belongs to the
    principal (the token's ``sub``) as well as to the operation: the same key from another
    client is another key (the scope holds a digest of ``sub``, so any ``sub`` fits in it).
    """
    if key is None:
        return None
    canonical = json.dumps(body.values(), sort_keys=True, separators=(",", ":"), default=str)
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    owner = hashlib.sha256(principal.encode()).hexdigest()[:32]
    scope = f"{request.method} {request.url.path} {owner}"
    return Idempotency(scope=scope, key=key, fingerprint=fingerprint)


def origin_of(request: Request, principal: Principal) -> Origin:
    """Where a write comes from, for its events: the request's id and the token's ``sub``
    (no actor when tokens are off: the development principal is nobody)."""
    return Origin(
        request_id=request.scope.get(REQUEST_ID_KEY),
        actor=None if principal is DEVELOPMENT_PRINCIPAL else principal.sub,
    )


Body = TypeVar("Body", bound=RequestModel)


@dataclass(frozen=True, slots=True)
class Creation(Generic[Body]):
    """A creating POST, read: its body, who sends it, its Idempotency-Key (None without one)
    and where it comes from (for its events)."""

    body: Body
    principal: Principal
    once: Idempotency | None
    origin: Origin


class NewResource(Generic[Body]):
    """The POST that creates a resource: its JSON body and Idempotency-Key, read by the route
    itself (``JsonBody``, ``RouteParameters``: FastAPI's answers, in its order), and its token.

    Built once per route at import (``schemas`` go to the document's components); the route
    passes ``openapi_extra(bearer)`` and reads each request with ``read(request, bearer)``.
    """

    def __init__(self, model: type[Body], path: str) -> None:
        self._body = JsonBody(model)
        self._parameters = RouteParameters(path, idempotency_key=IdempotencyKeyHeader)
        self.schemas = self._body.schemas

    def openapi_extra(self, bearer: Bearer) -> dict[str, Any]:
        """The operation's header, body and security requirement, as FastAPI documents them."""
        return {
            **self._parameters.openapi_extra,
            **self._body.openapi_extra,
            "security": bearer.requirement(),
        }

    async def read(self, request: Request, bearer: Bearer) -> Creation[Body]:
        """The request, read: a body that is not JSON is a 422 first, then the token (401/403),
        then one 422 with the header's and the body's errors."""
        read = await self._body.read(request)
        principal = await bearer(request)
        params, body = validated(request, self._parameters, read)
        key = params["idempotency_key"]
        return Creation(
            body=body,
            principal=principal,
            once=idempotency(request, key, body, principal=principal.sub),
            origin=origin_of(request, principal),
        )
