"""Building blocks for HTTP schemas: strict request models, domain rules as validators."""

from __future__ import annotations

import email.message
import inspect
import json
import re
import unicodedata
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Param, ParamTypes
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException

from shared.kernel.errors import RuleViolationError

T = TypeVar("T")
V = TypeVar("V")


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (no mass assignment), strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def values(self) -> dict[str, Any]:
        """Every field's validated value (as validated, not re-serialised)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent (a partial update's changes)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(description="Opaque; null on the last page.")


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _integer_text(value: object) -> object:
    if isinstance(value, str) and not _INTEGER_TEXT.fullmatch(value):
        raise ValueError("must be a whole number written in digits (e.g. 20, not 20.0)")
    return value


DIGITS_ONLY = BeforeValidator(_integer_text)
"""For integer query parameters: ``1.0`` or ``1e3`` is not an integer here. Put it after the
``Field`` bounds (``Annotated[int, Field(ge=1), DIGITS_ONLY]``) so the OpenAPI shows them."""


def _whole_number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE_NUMBER = BeforeValidator(_whole_number)
"""For strict integer body fields: a JSON number without a fraction (``1974.0``) is the integer
JSON Schema says it is; text (``"1974"``), booleans and fractions stay refused."""


def omitted_not_null(schema: dict[str, Any]) -> None:
    """For a PATCH field that may be left out but not sent as null: no ``default: null`` in the
    document (its type, with ``SkipJsonSchema[None]``, already leaves null out)."""
    schema.pop("default", None)


def nfc(value: object) -> object:
    """Unicode NFC before any length check, so lengths count characters as the domain does."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def domain_rule(rule: Callable[[V], T]) -> Callable[[V], T]:
    """Run a domain rule as a pydantic validator, so its message lands on the field's location."""

    def validate(value: V) -> T:
        try:
            return rule(value)
        except RuleViolationError as exc:
            raise PydanticCustomError("domain_rule", exc.detail) from None

    return validate


M = TypeVar("M", bound=BaseModel)


class QueryModel(Generic[M]):
    """Query parameters validated as one pydantic model, in one call per request.

    FastAPI analyses every declared parameter's annotation again on each request; for a list
    with eight query parameters that costs more than the rest of the request (measured: about
    half of a 50-book page's CPU in the framework). A route reads ``query.parse(request)``
    instead, and declares ``openapi_extra=query.openapi_extra``: the parameters FastAPI itself
    documents for ``Annotated[model, Query()]``, so the OpenAPI document is unchanged. The enum
    schemas those parameters refer to are in ``schemas``, for the document's components.
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        document = _documented_query(model)
        operation = document["paths"]["/"]["get"]
        self.openapi_extra: dict[str, Any] = {"parameters": operation.get("parameters", [])}
        self.schemas: dict[str, Any] = {
            name: schema
            for name, schema in document.get("components", {}).get("schemas", {}).items()
            if name not in {"HTTPValidationError", "ValidationError"}
        }

    def parse(self, request: Request) -> M:
        """The request's query parameters as ``model``; 422 (as FastAPI's own) if invalid."""
        try:
            return self.model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
            ) from None


class RouteParameters:
    """A hot route's path and header parameters, read in one pass, documented as FastAPI does.

    FastAPI resolves each declared parameter through its dependency machinery on every request:
    for a GET of one book (its id and If-None-Match) that was a sixth of the request's CPU in
    process. A route declares them here instead (``name=Annotated[type, Path() | Header()]``),
    takes only the ``Request``, reads ``params.parse(request)`` and passes
    ``openapi_extra=params.openapi_extra``: the parameters FastAPI itself documents for the same
    declarations, so the OpenAPI document is unchanged. Values are validated by pydantic as
    FastAPI validates them, and an invalid one is the same 422. A header that is absent is None.
    """

    def __init__(self, path: str, **declared: Any) -> None:
        operation = _documented(path, declared)["paths"][path]["get"]
        self.openapi_extra: dict[str, Any] = {"parameters": operation.get("parameters", [])}
        self._fields: list[tuple[str, ParamTypes, str, TypeAdapter[Any]]] = []
        for name, annotation in declared.items():
            info = next(m for m in get_args(annotation)[1:] if isinstance(m, Param))
            if info.in_ not in (ParamTypes.path, ParamTypes.header):
                raise ValueError(f"{name}: only path and header parameters are read here")
            key = info.alias or (name.replace("_", "-") if info.in_ is ParamTypes.header else name)
            self._fields.append((name, info.in_, key, TypeAdapter(annotation)))
        # Header names as ASGI sends them (lower-case bytes), by the key they are read under.
        self._header_keys: dict[Any, bytes] = {
            key: key.lower().encode("latin-1")
            for _, where, key, _ in self._fields
            if where is ParamTypes.header
        }
        self._header_names = frozenset(self._header_keys.values())

    def parse(self, request: Request) -> dict[str, Any]:
        """The declared parameters' values by name; 422 (as FastAPI's own) if any is invalid."""
        values, errors = self.collect(request)
        if errors:
            raise RequestValidationError(errors)
        return values

    def collect(self, request: Request) -> tuple[dict[str, Any], list[Any]]:
        """The declared parameters' values by name, and FastAPI's errors for the invalid ones
        (to be raised with a body's: ``JsonBody``)."""
        scope = request.scope
        path_params = scope["path_params"]
        headers: dict[bytes, bytes] | None = None
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for name, where, key, adapter in self._fields:
            raw: Any
            if where is ParamTypes.path:
                raw = path_params.get(key)
            else:
                if headers is None:  # the headers this route reads, in one pass (the first)
                    wanted = self._header_names
                    headers = {}
                    for header, value in scope["headers"]:
                        if header in wanted and header not in headers:
                            headers[header] = value
                found = headers.get(self._header_keys[key])
                raw = None if found is None else found.decode("latin-1")
            if raw is None:
                values[name] = None
                continue
            try:
                values[name] = adapter.validate_python(raw)
            except ValidationError as exc:
                errors += [{**e, "loc": (where.value, key, *e["loc"])} for e in exc.errors()]
        return values, errors


# FastAPI's word for a body it could not read (the problem handlers answer it as a 422).
_UNREADABLE_BODY = "There was an error parsing the body"
_MISSING = object()


class ReadBody(Generic[M]):
    """A request's body, read: validated already (the JSON fast path), or still to validate."""

    __slots__ = ("_model", "_valid", "_value")

    def __init__(self, model: type[M], valid: M | None, value: Any = _MISSING) -> None:
        self._model = model
        self._valid = valid
        self._value = value

    def validate(self) -> tuple[M | None, list[Any]]:
        """The body as ``model``, or FastAPI's errors for it (``loc`` starting with ``body``)."""
        if self._valid is not None:
            return self._valid, []
        if self._value is _MISSING:
            return None, [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        try:
            return self._model.model_validate(self._value, from_attributes=True), []
        except ValidationError as exc:
            return None, [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]


class JsonBody(Generic[M]):
    """A JSON request body validated by pydantic's own JSON parser, in one call.

    FastAPI parses a body with the standard library's ``json`` and validates the result through
    its dependency machinery: with the token's dependency and the Idempotency-Key header, that
    was a tenth of a POST's instructions in process. A route declares its body here instead,
    takes only the ``Request`` (``LeanRoute``), and passes ``openapi_extra`` (with its
    parameters' and its security requirement): the request body FastAPI itself documents for
    ``body: model``, so the document is unchanged. The answers are FastAPI's, in its order:
    a body that is not JSON is a 422 before anything else (``read``); the token is checked
    next; then the parameters' and the body's errors are one 422 (``validated``). Only a body
    that passes goes the fast way; any other is read again as FastAPI reads it, for the same
    errors.
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        document = _documented_body(model)
        operation = document["paths"]["/"]["post"]
        self.openapi_extra: dict[str, Any] = {"requestBody": operation["requestBody"]}
        # The body's schemas, for the document's components (no route declares the model).
        self.schemas: dict[str, Any] = {
            name: schema
            for name, schema in document.get("components", {}).get("schemas", {}).items()
            if name not in {"HTTPValidationError", "ValidationError"}
        }

    async def read(self, request: Request) -> ReadBody[M]:
        """The body, read; 422 now if it is declared as JSON and is not (as FastAPI does)."""
        try:
            body = await request.body()
        except HTTPException:
            raise  # a body over the size limit (413)
        except Exception as exc:  # e.g. the client went away while sending it
            raise HTTPException(status_code=400, detail=_UNREADABLE_BODY) from exc
        if not body:
            return ReadBody(self.model, None)
        if not _declared_json(request.headers.get("content-type")):
            return ReadBody(self.model, None, body)  # refused by validation, as FastAPI does
        try:
            return ReadBody(self.model, self.model.model_validate_json(body))
        except ValidationError:
            pass  # read again below, for FastAPI's errors
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ],
                body=exc.doc,
            ) from None
        except Exception as exc:  # not UTF-8 text
            raise HTTPException(status_code=400, detail=_UNREADABLE_BODY) from exc
        return ReadBody(self.model, None, value)


def validated(
    request: Request, parameters: RouteParameters, body: ReadBody[M]
) -> tuple[dict[str, Any], M]:
    """The route's parameters and its body; one 422 with the errors of both (FastAPI's)."""
    values, errors = parameters.collect(request)
    model, body_errors = body.validate()
    errors += body_errors
    if errors or model is None:
        raise RequestValidationError(errors)
    return values, model


def _declared_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (``application/json`` or
    ``application/*+json``; a body without one is not read as JSON: strict content types)."""
    if not content_type:
        return False
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class LeanRoute(APIRoute):
    """A route that takes only the ``Request`` (and declares no dependency) is called directly.

    For every request FastAPI's handler resolves the route's dependencies and parses its query
    string, headers and cookies into parameters, even when the endpoint asks for none of them.
    A hot route that reads its parameters itself (``RouteParameters``, ``QueryModel``) skips
    that: this route class, given to ``APIRouter(route_class=LeanRoute)``, hands such an
    endpoint the request and sends back the response it returns. Every other route (a body, a
    declared parameter, a dependency such as a required token) keeps FastAPI's handler. The
    route is FastAPI's all the same: matched, documented and wrapped in its exception handling.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        takes_only_the_request = (
            dependant.request_param_name is not None
            and not dependant.dependencies
            and not dependant.path_params
            and not dependant.query_params
            and not dependant.header_params
            and not dependant.cookie_params
            and not dependant.body_params
            and len(inspect.signature(self.endpoint).parameters) == 1
        )
        if not takes_only_the_request:
            return super().get_route_handler()
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request)

        return handler


def _documented(path: str, declared: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of a one-route app whose GET ``path`` takes ``declared``."""
    probe = FastAPI()

    async def documented(**_: Any) -> None:
        """Never served: only documented."""

    documented.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
            if f"{{{name}}}" in path
            else inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
            )
            for name, annotation in declared.items()
        ]
    )
    probe.get(path)(documented)
    return probe.openapi()


def _documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI document of a one-route app whose POST takes ``model`` as its body."""
    probe = FastAPI()

    async def documented(body: Any) -> None:
        """Never served: only documented."""

    documented.__annotations__["body"] = model
    probe.post("/")(documented)
    return probe.openapi()


def _documented_query(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI document of a one-route app whose route takes ``model`` as its query."""
    probe = FastAPI()

    async def documented(params: Any) -> None:
        """Never served: only documented."""

    # Set here, not written in the signature: this module's annotations are strings.
    documented.__annotations__["params"] = Annotated[model, Query()]
    probe.get("/")(documented)
    return probe.openapi()
