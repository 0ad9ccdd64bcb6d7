"""The application factory: root container, lifespan, middleware, error mapping, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from library.authors.api.router import SCHEMAS as AUTHORS_SCHEMAS
from library.authors.api.router import add_routes as add_authors_routes
from library.books.api.router import EXCEPTION_HANDLERS as BOOKS_EXCEPTION_HANDLERS
from library.books.api.router import SCHEMAS as BOOKS_SCHEMAS
from library.books.api.router import add_routes as add_books_routes
from library.bootstrap.container import RootContainer
from library.bootstrap.errors import install_driver_error_handlers
from library.bootstrap.health import create_router as health_router
from library.changes.api.router import create_router as changes_router
from shared.logging import configure_logging
from shared.settings import Settings
from shared.web.admission import AdmissionMiddleware
from shared.web.api import LeanRoute
from shared.web.auth import Authorization, authenticator_from, install_auth_handlers
from shared.web.http import document_commit_lsn
from shared.web.middleware import RequestContextMiddleware, TrustedHosts
from shared.web.problems import install_problem_handlers
from shared.web.rate_limit import RateLimiter, SearchCap

API_PREFIX = "/api/v1"
# The young generation's collection threshold while the app serves (CPython's default: 700).
# A page of 50 books holds about 300 containers (records, dicts, lists) while it is built, and
# 16 requests are in flight at once: at 700 a young collection ran every other page, found most
# of them alive, and moved them on to be traversed again by the older generations' collections.
# At 10,000 most are freed by their reference counts first: 5% fewer instructions per page
# (bench.instructions, list_50: 1.69M -> 1.61M), GET unchanged; docs/performance.md.
GC_YOUNG_THRESHOLD = 10_000
# What a browser client may send and read across origins (when LIBRARY_CORS_ORIGINS is set).
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Commit-LSN",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Commit-LSN",
    "Location",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
]


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its function's name (``list_books``, ``get_book``...),
    stable and readable for generated clients (FastAPI's default appends path and method)."""
    return route.name


log = structlog.stdlib.get_logger("library")


def create_app(settings: Settings | None = None, container: RootContainer | None = None) -> FastAPI:
    """A ready-to-serve app. Pass ``container`` (e.g. with overridden providers) in tests."""
    container = container or RootContainer()
    if settings is not None:
        container.settings.override(settings)
    settings = container.settings()
    observability = container.observability()
    configure_logging(settings.log_level, settings.log_format, observability.log_processors)
    # Outside development the server does not start without token verification.
    authenticator = authenticator_from(settings)
    auth = Authorization.of(authenticator, reads_required=settings.auth_reads == "required")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine = container.engine()  # created here, at start-up, and disposed at shutdown
        read_pool = container.read_pool()
        await read_pool.open()
        await observability.start(engine, read_pool, container.write_observers())
        if authenticator is not None:
            await authenticator.start()  # a JWKS URL is fetched once here, then cached
        # The outbox relay (docs/events.md) delivers events to the books' copy of author names.
        relay = container.relay() if settings.events_relay_enabled else None
        if relay is not None:
            await relay.start()
        # What start-up allocated lives as long as the process: keep it out of every later
        # garbage collection (a full collection over it was the p99 of a request).
        gc.collect()
        gc.freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
        log.info(
            "started", environment=settings.environment, database=engine.url.render_as_string()
        )
        try:
            yield
        finally:
            if relay is not None:
                await relay.stop()
                await container.relay_engine().dispose()
                container.relay.reset()
                container.relay_engine.reset()
                container.relay_session_factory.reset()
            gc.set_threshold(*threshold)
            observability.stop()
            await read_pool.close()
            await engine.dispose()
            container.engine.reset()
            container.session_factory.reset()
            log.info("stopped")

    options: dict[str, Any] = {
        "title": "library",
        "version": version("library"),  # the package's own version (pyproject.toml)
        "summary": "A catalog of authors and books.",
        "lifespan": lifespan,
        "generate_unique_id_function": operation_id,
        # FastAPI's built-in OpenTelemetry stays off until the service configures it: off, it
        # costs nothing per request (on but unconfigured, it checks the global providers).
        "telemetry": {"tracing": False, "metrics": False, "logs": False},
    }
    # Docs (Swagger UI and ReDoc) are served from the package, not from a CDN; production may
    # switch them and the OpenAPI document off (LIBRARY_DOCS_ENABLED=false).
    app = (
        FastAPIOffline(**options)
        if settings.docs_enabled
        else FastAPI(**options, docs_url=None, redoc_url=None, openapi_url=None)
    )
    app.state.container = container
    install_problem_handlers(app, schemas={**AUTHORS_SCHEMAS, **BOOKS_SCHEMAS})
    # Commit-LSN (docs/operations.md "Read replica"): read by the admission middleware and
    # answered by the request-context one, documented on every read and write of the API.
    with_problems = app.openapi
    app.openapi = lambda: document_commit_lsn(with_problems(), API_PREFIX)  # type: ignore[method-assign]
    install_driver_error_handlers(app)
    install_auth_handlers(app)
    for error_type, handler in BOOKS_EXCEPTION_HANDLERS.items():
        app.add_exception_handler(error_type, handler)
    # Two pure ASGI middlewares (docs/performance.md): the edge outermost (request id, logs,
    # response headers, metrics, the server span, trusted hosts, the last-resort 500), and
    # inside it what admits a request (its rate, a search slot, its body's size). CORS, when
    # configured, sits between them, so that browsers can read the 429s and 413s too.
    limiter = (
        RateLimiter(
            anonymous=settings.rate_limit_anonymous,
            authenticated=settings.rate_limit_authenticated,
            redis_url=settings.redis_url,
            namespace=settings.rate_limit_namespace,
        )
        if settings.rate_limit_enabled
        else None
    )
    app.add_middleware(
        AdmissionMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        limiter=limiter,
        authenticator=authenticator,
        search_cap=SearchCap(settings.search_concurrency, settings.search_queue_seconds),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.listed(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    trusted = settings.trusted_hosts.strip() != "*"
    app.add_middleware(
        RequestContextMiddleware,
        trusted_hosts=TrustedHosts(settings.listed(settings.trusted_hosts)) if trusted else None,
        observer=observability.metrics,
        spans=observability.server_spans(),
    )
    # Routes close over what is built once (queries, readers, service factories): nothing is
    # resolved per request. They are the app's own routes, not an included router's (FastAPI
    # matches those twice per request); a route that reads its own parameters is called
    # directly (LeanRoute). The books routes come first: they are the busiest to match.
    app.router.route_class = LeanRoute
    add_books_routes(
        app.router, API_PREFIX, container.books.queries(), container.books.service, auth
    )
    add_authors_routes(
        app.router, API_PREFIX, container.authors.queries(), container.authors.service, auth
    )
    app.include_router(changes_router(container.changes.feed(), auth), prefix=API_PREFIX)
    app.include_router(health_router(container.health))
    # Metrics and tracing (docs/operations.md "Metrics and tracing"): nothing is installed for
    # what is off.
    observability.install(app, container)
    # FastAPI adds its documentation routes (/openapi.json, /docs, /redoc, their assets) first,
    # and Starlette tries routes in order: every API request was matched against those five
    # patterns before its own. The API's routes go first (the sort keeps each group's order;
    # no pattern overlaps another group's, and the OpenAPI document is the same).
    app.router.routes.sort(key=lambda route: not getattr(route, "path", "").startswith(API_PREFIX))
    return app
