"""Pure ASGI middleware: headers every response carries (nosniff; no-store where it matters)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.problems import PROBLEM_MEDIA_TYPE, http_problem_body

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every response; ``Cache-Control: no-store`` on
    writes, on problems (4xx/5xx) and on responses to requests that sent credentials, so no
    shared cache keeps them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["method"] not in _SAFE or any(
            name == b"authorization" for name, _ in scope["headers"]
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append(_NOSNIFF)
                if (private or message["status"] >= 400) and not any(
                    name == b"cache-control" for name, _ in headers
                ):
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustedHostsMiddleware:
    """400 problem+json for a ``Host`` header not in ``allowed`` (``*.example.org`` allows
    the subdomains of example.org). Health checks are exempt (probes use addresses)."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.exact = frozenset(host.lower() for host in allowed if not host.startswith("*."))
        self.suffixes = tuple(host[1:].lower() for host in allowed if host.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health/"):
            await self.app(scope, receive, send)
            return
        host = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower().rsplit(":", 1)[0]
                break
        if host in self.exact or (self.suffixes and host.endswith(self.suffixes)):
            await self.app(scope, receive, send)
            return
        body = http_problem_body(400, "This host name is not served here.", scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
