"""Pure ASGI middleware: no request body larger than the configured limit is read (413)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.problems import PROBLEM_MEDIA_TYPE, http_problem_body

_FRAMED_BY_HEADERS = frozenset({"1.0", "1.1"})


class BodyLimitMiddleware:
    """Answers 413 to a body over ``max_bytes``, announced (Content-Length) or streamed (chunked).

    An announced size over the limit is refused before a byte is read. A streamed body is
    counted as it arrives; the chunk that crosses the limit raises an HTTPException(413) in the
    reader (the router), which the problem handlers answer like any HTTP error. Either way at
    most ``max_bytes`` (plus one chunk) is ever held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        if not chunked and scope.get("http_version") in _FRAMED_BY_HEADERS:
            # HTTP/1.x: without Transfer-Encoding, a request's body is what Content-Length
            # announces (checked above), or nothing at all: there is nothing to count.
            await self.app(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail=self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = http_problem_body(413, self._detail(), scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The unread body stays on the connection: do not reuse it.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The announced Content-Length (None if absent or unreadable), and whether the body is
    sent in chunks (Transfer-Encoding)."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
