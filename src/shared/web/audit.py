"""Pure ASGI middleware: one audit log line per write (who, from where, what, which version)."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.auth import SCOPE_KEY, AuthError, Principal

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = structlog.stdlib.get_logger("library.audit")


class AuditLogMiddleware:
    """Logs every write (``event=write``) with the token's ``sub``, the client address, the
    resource, its version after the write (from the ETag) and the outcome (the status).

    The request id is bound to the log context by the request-context middleware (outside this
    one). Reads pass straight through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        outcome: dict[str, Any] = {"status": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"etag":
                        outcome["etag"] = value.decode("latin-1")
                    elif name == b"location":
                        outcome["location"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            found = scope.get(SCOPE_KEY)
            etag = outcome.get("etag", "").strip('"')
            client = scope.get("client")
            log.info(
                "write",
                sub=found.sub if isinstance(found, Principal) else None,
                token="invalid" if isinstance(found, AuthError) else None,
                client=client[0] if client else None,
                method=scope["method"],
                resource=outcome.get("location", scope["path"]),
                version=int(etag) if etag.isascii() and etag.isdigit() else None,
                status=outcome["status"],
                outcome="done" if outcome["status"] < 400 else "refused",
            )
