"""What a request must pass before the router sees it, as one pure ASGI middleware:

1. its client's rate (``/api/`` routes only: health checks and docs are free), 429;
2. a slot among the concurrent searches, 503 after a bounded wait;
3. its body's size: an announced ``Content-Length`` over the limit is refused before a byte is
   read, a chunked body is counted as it arrives (413 either way).

No wrapper around ``send``: a request that passes costs a few comparisons. The answers are
problem+json; the request-context middleware outside this one adds the request id to them.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.kernel.consistency import parse_lsn, read_after
from shared.web.auth import Authenticator, AuthError, principal_of
from shared.web.problems import RETRY_AFTER_SECONDS, http_problem_body, send_problem
from shared.web.rate_limit import RateLimiter, SearchCap, is_search, rate_limited, searches_busy

_API_PREFIX = "/api/"
_FRAMED_BY_HEADERS = frozenset({"1.0", "1.1"})
# The unread body stays on the connection: do not reuse it.
_CLOSE = ((b"connection", b"close"),)


class AdmissionMiddleware:
    """Rate limits (when ``limiter`` is given), the search cap (``search_cap``) and the body
    limit (``max_body_bytes``), in that order."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        limiter: RateLimiter | None = None,
        authenticator: Authenticator | None = None,
        search_cap: SearchCap | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.authenticator = authenticator
        self.search_cap = search_cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = credentials = False
        commit_lsn: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"authorization":
                credentials = True
            elif name == b"commit-lsn":
                commit_lsn = value
        limiter = self.limiter
        if (
            limiter is not None
            and scope["path"].startswith(_API_PREFIX)
            and await self._over_rate(limiter, scope, send, credentials)
        ):
            return
        cap = self.search_cap if is_search(scope) else None
        if cap is not None and not await cap.acquire():
            body = searches_busy(scope["path"])
            await send_problem(send, 503, body, ((b"retry-after", RETRY_AFTER_SECONDS.encode()),))
            return
        reading_after = None
        if commit_lsn is not None and scope["method"] in _READS:
            # The position a client's last write left the primary at: its reads see it
            # (shared.persistence.replica). Not one? A 400, before anything else happens.
            # (A read's header: other methods ignore it, and an undeclared one is still 405.)
            try:
                position = parse_lsn(commit_lsn.decode("latin-1"))
            except ValueError:
                if cap is not None:
                    cap.release()
                await send_problem(send, 400, _bad_commit_lsn(scope["path"]))
                return
            reading_after = read_after.set(position)
        try:
            if declared is not None and declared > self.max_body_bytes:
                await send_problem(send, 413, self._too_large(scope), _CLOSE)
            elif not chunked and scope.get("http_version") in _FRAMED_BY_HEADERS:
                # HTTP/1.x: without Transfer-Encoding, a request's body is what Content-Length
                # announces (checked above), or nothing at all: there is nothing to count.
                await self.app(scope, receive, send)
            else:
                await self.app(scope, self._counting(receive), send)
        finally:
            if cap is not None:
                cap.release()
            if reading_after is not None:
                read_after.reset(reading_after)

    async def _over_rate(
        self, limiter: RateLimiter, scope: Scope, send: Send, credentials: bool
    ) -> bool:
        """Answer 429 (and say so) when the request's client is over ``limiter``'s rate."""
        kind, client = "anonymous", _address(scope)
        if credentials and self.authenticator is not None:
            try:
                principal = await principal_of(scope, self.authenticator)
            except AuthError:
                principal = None  # counted by address; the route answers 401 if it needs one
            if principal is not None:
                kind, client = "authenticated", principal.sub
        refused = await limiter.refused(kind, client)
        if refused is None:
            return False
        item, wait = refused
        body, headers = rate_limited(limiter, kind, item, wait, scope["path"])
        await send_problem(send, 429, body, headers)
        return True

    def _counting(self, receive: Receive) -> Receive:
        """``receive``, raising 413 (answered by the problem handlers) once the body read so far
        is over the limit: at most the limit plus one chunk is ever held in memory."""
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, detail=self._detail())
            return message

        return counting_receive

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."

    def _too_large(self, scope: Scope) -> bytes:
        return http_problem_body(413, self._detail(), scope["path"])


_READS = frozenset({"GET", "HEAD"})


def _bad_commit_lsn(path: str) -> bytes:
    return http_problem_body(
        400,
        "Commit-LSN must be a WAL position as a write's Commit-LSN header gave it "
        "(e.g. 0/16B3F48).",
        path,
        code="invalid-commit-lsn",
        title="Invalid Commit-LSN",
    )


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
