"""The request's edge, as one pure ASGI middleware with one pass over the request's headers and
one wrapper around ``send``:

- a request id on every request (the caller's ``X-Request-ID`` when it is sane, else 128 random
  bits), echoed on the response and bound to every log line of the request;
- one access-log line per request, and one audit line per write (who, from where, what, which
  version, the outcome);
- the headers every response carries (``nosniff``; ``no-store`` where it matters);
- the trusted ``Host`` names, when configured (400 for any other);
- the request metrics, when an observer is given;
- the last resort: an exception nothing else handled is logged once and answered 500.

Each of these was a middleware of its own: seven awaits, seven closures and four header
rewrites per request. Folded, the request path pays for one of each (docs/performance.md).
What refuses requests for their size or their rate lives in ``shared.web.admission``.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.kernel.consistency import committed_at
from shared.web.auth import SCOPE_KEY, AuthError, Principal
from shared.web.problems import http_problem_body, internal_error_body, send_problem

_REQUEST_ID = b"x-request-id"
# Where the request's id waits for the routes (shared.web.http.origin_of): a scope key of ours.
REQUEST_ID_KEY = "library.request_id"
# Accept a caller's id only when it is short and printable, so logs cannot be forged or flooded.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_EXPOSE_TRACEPARENT = (b"access-control-expose-headers", b"traceparent")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_COMMIT_LSN = b"commit-lsn"

access_log = structlog.stdlib.get_logger("library.access")
audit_log = structlog.stdlib.get_logger("library.audit")


class RequestObserver(Protocol):
    """What watches every request (the metrics): told when one starts and when it ends."""

    def request_started(self, method: str) -> None: ...

    def request_finished(self, scope: Scope, method: str, status: int, seconds: float) -> None:
        """``status`` is 500 when no response started (the app failed or the client left)."""


class ServerSpans(Protocol):
    """What traces every request (shared.observability.spans.ServerSpans)."""

    propagated_headers: frozenset[bytes]  # the headers that carry a caller's trace context

    def begin(self, scope: Scope, method: str, propagated: bool) -> tuple[Any, Any, Any]:
        """Before the app: (a context variable's token, the span, the ``traceparent`` header).
        Without a span (a request not sampled) the token is all there is to reset at the end;
        with one, :meth:`end` is called."""

    def end(
        self,
        begun: tuple[Any, Any, Any],
        scope: Scope,
        method: str,
        status: int,
        error: BaseException | None,
    ) -> None:
        """After the response and the access line."""


class TrustedHosts:
    """The ``Host`` names served (``*.example.org`` allows the subdomains of example.org)."""

    def __init__(self, allowed: list[str]) -> None:
        self.exact = frozenset(host.lower() for host in allowed if not host.startswith("*."))
        self.suffixes = tuple(host[1:].lower() for host in allowed if host.startswith("*."))

    def allows(self, host_header: bytes) -> bool:
        host = host_header.decode("latin-1").lower().rsplit(":", 1)[0]
        return host in self.exact or bool(self.suffixes and host.endswith(self.suffixes))


class RequestContextMiddleware:
    """The request's edge (see the module's docstring). Outermost of the app's middlewares."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_hosts: TrustedHosts | None = None,
        observer: RequestObserver | None = None,
        spans: ServerSpans | None = None,
    ) -> None:
        self.app = app
        self.trusted_hosts = trusted_hosts
        self.observer = observer
        # The server span (tracing on): begun first and ended last, around the access line.
        self.spans = spans
        self.propagated_headers = spans.propagated_headers if spans is not None else frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        write = method in _WRITES
        # Responses to writes and to requests with credentials are not for shared caches.
        private = method not in _SAFE
        incoming_id: bytes | None = None
        host = b""
        propagated = False  # a caller's trace context (traceparent ...)
        propagated_headers = self.propagated_headers
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                incoming_id = value
            elif name == b"authorization":
                private = True
            elif name == b"host":
                host = value
            elif name in propagated_headers:
                propagated = True
        if incoming_id is not None and _VALID_REQUEST_ID.match(incoming_id):
            request_id = incoming_id.decode("ascii")
        else:
            request_id = os.urandom(16).hex()  # uuid4().hex's form, without building a UUID
        scope[REQUEST_ID_KEY] = request_id
        request_id_header = (_REQUEST_ID, request_id.encode("ascii"))
        status = 0  # set once the response has started
        etag = location = None  # a write's outcome, for the audit line
        spans = self.spans
        traced = None if spans is None else spans.begin(scope, method, propagated)

        async def send_at_edge(message: Message) -> None:
            nonlocal status, etag, location
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[tuple[bytes, bytes]] = [*message.get("headers", ())]
                cacheable = not private and status < 400
                for name, value in headers:
                    if name == b"cache-control":
                        cacheable = True  # the app chose; keep its choice
                    elif write and name == b"etag":
                        etag = value
                    elif write and name == b"location":
                        location = value
                if write and status < 400:
                    # The write's position, with a replica (shared.kernel.consistency).
                    lsn = committed_at.get()
                    if lsn is not None:
                        headers.append((_COMMIT_LSN, lsn.encode("ascii")))
                headers.append(request_id_header)
                headers.append(_NOSNIFF)
                if traced is not None:
                    headers.append(traced[2])  # traceparent
                    headers.append(_EXPOSE_TRACEPARENT)
                if not cacheable:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        observer = self.observer
        if observer is not None:
            observer.request_started(method)
        started = time.perf_counter()
        # Bound and reset by hand: bound_contextvars is a generator-based context manager.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        # A write's Commit-LSN is its own: none is left over from another request of the task.
        unset = committed_at.set(None) if write else None
        escaped: BaseException | None = None  # what leaves this layer, for the server span
        try:
            hosts = self.trusted_hosts
            # Health checks are exempt from the host check: probes use addresses.
            if (
                hosts is not None
                and not hosts.allows(host)
                and not scope["path"].startswith("/health/")
            ):
                await send_problem(
                    send_at_edge, 400, http_problem_body(400, _UNKNOWN_HOST, scope["path"])
                )
                return
            await self.app(scope, receive, send_at_edge)
        except Exception as exc:
            # The last resort: log it once, with the request id, and answer a problem.
            access_log.exception("unhandled error", method=method, path=scope["path"])
            if status:
                escaped = exc
                raise  # too late for another response; the server closes the connection
            await send_problem(send_at_edge, 500, internal_error_body(scope["path"]))
        except BaseException as exc:  # cancelled
            escaped = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            final = status or 500
            if observer is not None:
                observer.request_finished(scope, method, final, seconds)
            access_log.info(
                "request",
                method=method,
                path=scope["path"],
                status=final,
                duration_ms=round(seconds * 1000, 2),
            )
            if write:
                _audit(scope, method, final, etag, location)
            if unset is not None:
                committed_at.reset(unset)
            structlog.contextvars.reset_contextvars(**bound)
            if traced is not None and spans is not None:
                if traced[1] is None:  # not sampled: only its ids were made current
                    traced[0].var.reset(traced[0])
                else:
                    spans.end(traced, scope, method, status, escaped)


_UNKNOWN_HOST = "This host name is not served here."


def _audit(
    scope: Scope, method: str, status: int, etag: bytes | None, location: bytes | None
) -> None:
    """One line per write: the token's ``sub``, the client address, the resource, its version
    after the write (from the ETag) and the outcome (the status)."""
    found: Any = scope.get(SCOPE_KEY)
    version = etag.strip(b'"') if etag is not None else b""
    client = scope.get("client")
    audit_log.info(
        "write",
        sub=found.sub if isinstance(found, Principal) else None,
        token="invalid" if isinstance(found, AuthError) else None,
        client=client[0] if client else None,
        method=method,
        resource=location.decode("latin-1") if location is not None else scope["path"],
        version=int(version) if version.isdigit() else None,
        status=status,
        outcome="done" if status < 400 else "refused",
    )
