"""Observability, wired at the composition root: what each use case, pool and request reports.

The domain and the application know nothing of it: the services are subclassed here, once at
start-up, with each use case wrapped in a span (when tracing is on) and followed by the domain
counters its result calls for (when metrics are on). With both off the services are left as
they are, and nothing is installed anywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from library.authors.application.services import AuthorService
from library.books.application.services import BookService, BookView
from library.books.interchange.importer import BookImporter
from library.books.interchange.runner import ImportSummary
from shared.kernel.idempotency import Once
from shared.kernel.values import utc_now
from shared.observability.metrics import (
    CONTENT_TYPE,
    Metrics,
    MetricsServer,
    PoolUsage,
    multiprocess_dir,
    package_version,
    source_commit,
    watch_engine,
)
from shared.observability.tracing import Tracing, add_trace_ids
from shared.persistence.driver import StatementObservers
from shared.persistence.reads import ReadPool
from shared.persistence.unit_of_work import write_connection_waits
from shared.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from structlog.typing import Processor

    from library.bootstrap.container import RootContainer
    from shared.observability.spans import ServerSpans

T = TypeVar("T")
Outcome = Callable[[Any, datetime], None]

WRITE_POOL = "write"
READ_POOL = "read"


class Observability:
    """Metrics and tracing of one app: installed on it at creation, started by its lifespan."""

    def __init__(
        self, settings: Settings, metrics: Metrics | None, tracing: Tracing | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tracing = tracing
        self._server: MetricsServer | None = None
        self._read_pool: ReadPool | None = None
        self._driver: StatementObservers | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, tracer_provider: TracerProvider | None
    ) -> Observability:
        metrics = None
        if settings.metrics_enabled:
            metrics = Metrics(
                version=package_version(),
                commit=source_commit(settings.build_commit),
                multiprocess_path=multiprocess_dir(),
            )
        tracing = Tracing(tracer_provider) if tracer_provider is not None else None
        return cls(settings, metrics, tracing)

    @property
    def log_processors(self) -> tuple[Processor, ...]:
        """What every log line gets: the trace and span ids, when tracing is on."""
        # Always: without a span it is one context-variable read per line, and loggers cache
        # their processors on first use (a later switch could not reach them).
        return (add_trace_ids,)

    @property
    def metrics_port(self) -> int | None:
        """The port of the metrics server once it listens (LIBRARY_METRICS_PORT may be 0)."""
        return self._server.port if self._server is not None else None

    def server_spans(self) -> ServerSpans | None:
        """The server span of each request, for the request-context middleware (tracing on)."""
        return self.tracing.server_spans() if self.tracing is not None else None

    def install(self, app: FastAPI, container: RootContainer) -> None:
        """At app creation: the request metrics, ``/metrics``, the use cases."""
        metrics, tracing = self.metrics, self.tracing
        # The request metrics: the request-context middleware reports to ``metrics``.
        if metrics is not None and self.settings.metrics_port is None:

            def scrape() -> Response:  # run in the thread pool: rendering may read files
                return Response(metrics.render(), media_type=CONTENT_TYPE)

            app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
        tracer = tracing.tracer("library") if tracing is not None else None
        if metrics is None and tracer is None:
            return
        books: Any = container.books  # a sub-container: its providers are typed as Provider
        authors: Any = container.authors
        books.service.set_provides(
            instrument_use_cases(BookService, "books", tracer, book_outcomes(metrics))
        )
        authors.service.set_provides(
            instrument_use_cases(AuthorService, "authors", tracer, author_outcomes(metrics))
        )
        if tracer is not None:
            books.importer.set_provides(
                instrument_use_cases(BookImporter, "books", tracer, {"import_batch": _nothing})
            )

    async def start(
        self, engine: AsyncEngine, read_pool: ReadPool, driver: StatementObservers
    ) -> None:
        """At start-up, once the engine and the read pool exist (``driver``: what units of
        work send on asyncpg directly, shared.persistence.driver)."""
        metrics, settings = self.metrics, self.settings
        if metrics is not None:
            read_pool.on_query = metrics.query_observer(READ_POOL)
            self._read_pool = read_pool
            # The write side's statements: SQLAlchemy's, and those sent on asyncpg directly.
            write_statements = metrics.query_observer(WRITE_POOL)
            watch_engine(engine.sync_engine, write_statements)
            driver.on_query = write_statements
            self._driver = driver
            metrics.watch_pool(WRITE_POOL, _write_pool_sampler(engine, settings))
            metrics.watch_pool(READ_POOL, _read_pool_sampler(read_pool))
            tracker = read_pool.tracker
            if tracker is not None:
                metrics.watch_replica(
                    lambda: (
                        tracker.state != "down",
                        None if tracker.lag_ms is None else tracker.lag_ms / 1000,
                    )
                )
            metrics.start()
            if settings.metrics_port is not None:
                host = settings.metrics_host or settings.host
                self._server = MetricsServer(metrics, host, settings.metrics_port)
        if self.tracing is not None:
            self.tracing.instrument_engine(engine.sync_engine)
            self.tracing.instrument_read_pool(read_pool)
            self.tracing.instrument_driver(driver)

    def stop(self) -> None:
        """At shutdown: close the metrics port, drop this process's gauges, flush the spans."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._read_pool is not None:
            self._read_pool.on_query = None
            self._read_pool = None
        if self._driver is not None:
            self._driver.on_query = None
            self._driver = None
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            self.tracing.shutdown()

    def count_import(self, before: ImportSummary, after: ImportSummary) -> None:
        """The rows an import batch settled (``after`` minus ``before``)."""
        if self.metrics is None:
            return
        rows = self.metrics.import_rows
        for outcome, done in (
            ("imported", after.imported - before.imported),
            ("rejected", after.rejected - before.rejected),
            ("present", after.present - before.present),
        ):
            if done:
                rows.labels(outcome).inc(done)


def _write_pool_sampler(engine: AsyncEngine, settings: Settings) -> Callable[[], PoolUsage]:
    pool: Any = engine.sync_engine.pool  # a QueuePool: its counts are plain attribute reads
    largest = settings.db_pool_size + settings.db_max_overflow

    def sample() -> PoolUsage:
        return PoolUsage(
            used=pool.checkedout(),
            idle=pool.checkedin(),
            max=largest,
            pending=write_connection_waits.count,
        )

    return sample


def _read_pool_sampler(read_pool: ReadPool) -> Callable[[], PoolUsage | None]:
    def sample() -> PoolUsage | None:
        usage = read_pool.usage()
        return None if usage is None else PoolUsage(*usage)

    return sample


# Use cases -----------------------------------------------------------------------------------


def _nothing(_result: Any, _started: datetime) -> None:
    return None


def _writes(metrics: Metrics, resource: str) -> tuple[Any, Any, Any, Any]:
    counter = metrics.catalog_writes
    return (
        counter.labels(resource, "created"),
        counter.labels(resource, "updated"),
        counter.labels(resource, "deleted"),
        metrics.idempotent_replays.labels(resource),
    )


def _outcomes(
    metrics: Metrics | None, resource: str, names: tuple[str, str, str]
) -> dict[str, Outcome]:
    create, revise, delete = names
    if metrics is None:
        return dict.fromkeys(names, _nothing)
    created, updated, deleted, replayed = _writes(metrics, resource)

    def on_create(result: Any, _started: datetime) -> None:
        if isinstance(result, Once) and result.replayed:
            replayed.inc()
        else:
            created.inc()

    def on_revise(result: Any, started: datetime) -> None:
        # A PATCH that changes nothing keeps the version and the time of the last change: only
        # a change stamps the entity with a time from this call.
        entity = result.book if isinstance(result, BookView) else result
        if entity.updated_at >= started:
            updated.inc()

    def on_delete(_result: Any, _started: datetime) -> None:
        deleted.inc()

    return {create: on_create, revise: on_revise, delete: on_delete}


def book_outcomes(metrics: Metrics | None) -> dict[str, Outcome]:
    return _outcomes(metrics, "books", ("add_book", "revise_book", "delete_book"))


def author_outcomes(metrics: Metrics | None) -> dict[str, Outcome]:
    return _outcomes(metrics, "authors", ("register_author", "revise_author", "delete_author"))


def instrument_use_cases(
    cls: type[T], context: str, tracer: Tracer | None, outcomes: Mapping[str, Outcome]
) -> type[T]:
    """A subclass of the service ``cls`` whose use cases (``outcomes``' keys) are each wrapped
    in a span ``<context>.<use case>`` (with a tracer) and followed by their outcome's counts."""
    wrapped = {
        name: _use_case(getattr(cls, name), f"{context}.{name}", tracer, outcome)
        for name, outcome in outcomes.items()
    }
    return type(cls.__name__, (cls,), {**wrapped, "__module__": __name__})


def _use_case(
    method: Callable[..., Awaitable[Any]], span: str, tracer: Tracer | None, outcome: Outcome
) -> Callable[..., Awaitable[Any]]:
    if tracer is None:

        @functools.wraps(method)
        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = utc_now()
            result = await method(self, *args, **kwargs)
            outcome(result, started)
            return result

        return counted

    @functools.wraps(method)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span(span):
            started = utc_now()
            result = await method(self, *args, **kwargs)
        outcome(result, started)
        return result

    return traced
