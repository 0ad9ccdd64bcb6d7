"""Pure ASGI middleware: a request id on every request, and one access-log line per request."""

from __future__ import annotations

import os
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.problems import PROBLEM_MEDIA_TYPE, internal_error_body

_HEADER = b"x-request-id"
# Where the request's id waits for the routes (shared.web.http.origin_of): a scope key of ours.
REQUEST_ID_KEY = "library.request_id"
# Accept a caller's id only when it is short and printable, so logs cannot be forged or flooded.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

log = structlog.stdlib.get_logger("library.access")


class RequestContextMiddleware:
    """Accepts or makes ``X-Request-ID``, echoes it, binds it to the logs, logs each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # 128 random bits as 32 hex digits (uuid4().hex's form, without building a UUID).
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        scope[REQUEST_ID_KEY] = request_id
        status: int | None = None  # set once the response has started
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                headers.append((_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        # Bound and reset by hand: bound_contextvars is a generator-based context manager.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                # The last resort: log it once, with the request id, and answer a problem.
                log.exception("unhandled error", method=scope["method"], path=scope["path"])
                if status is not None:
                    raise  # too late for another response; the server closes the connection
                body = internal_error_body(scope["path"])
                await send_with_request_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_request_id({"type": "http.response.body", "body": body})
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status if status is not None else 500,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
        finally:
            structlog.contextvars.reset_contextvars(**bound)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _HEADER:
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None
