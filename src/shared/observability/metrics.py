"""Prometheus metrics under OpenTelemetry's semantic-convention names, cheap on the request path.

Every metric is created once, at start-up. What a request reports (its duration, the requests
in flight, the statuses counted, each statement's duration) is not written to prometheus-client
as it happens: an observation through prometheus-client is a chain of Python calls and a lock
per increment (about 34,000 instructions per GET one book, 7% of the request). The request path
adds to plain lists and dicts instead (a bucket found with ``bisect``, two additions), and what
accumulated is written to the prometheus-client metrics, as deltas, when they are rendered (and,
with several processes, every second, so that each process's file stays current): the same
series, values and multiprocess files, a second late at most between processes. Pool gauges
are read from the pools at the same moments.

Several processes (``PROMETHEUS_MULTIPROC_DIR`` set before the first metric is made, as
prometheus-client requires): each process writes its values to files in that folder and any
of them renders the sum. Gauges of the processes still running are added up (``livesum``);
a process that stops removes its gauges (:meth:`Metrics.close`).
"""

from __future__ import annotations

import os
import socket
import subprocess  # nosec B404
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from socketserver import ThreadingMixIn
from time import perf_counter
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.types import Scope

from shared.observability.routes import RouteTemplates

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# OpenTelemetry's advice for http.server.request.duration, with 1 and 2.5 ms added: most reads
# here take a few milliseconds, and a p99 needs buckets where the requests are.
HTTP_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
DB_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Methods outside this set are one label value, as the semantic conventions say: a client cannot
# create series by inventing methods.
_METHODS: Final = frozenset(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]
)
# The answers the domain counters follow: cached copies still current, lost and missing If-Match,
# and rate limiting.
COUNTED_STATUSES: Final = (304, 412, 428, 429)
_OPERATIONS: Final = frozenset(
    ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "COPY"]
)
_DB_SYSTEM: Final = "postgresql"
_MAX_STATEMENTS: Final = 2_000  # statements whose label set is kept (SQL text is finite here)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A connection pool at one moment."""

    used: int
    idle: int
    max: int
    pending: int


PoolSampler = Callable[[], PoolUsage | None]
# The read replica: whether it answers, and its lag in seconds (None: unknown).
ReplicaSampler = Callable[[], tuple[bool, float | None]]
QueryObserver = Callable[[str, float], None]


class _Unwritten:
    """One histogram series' observations and what of them its prometheus-client child has.

    ``counts`` is what the request path adds to: ``[sum, bucket 0, ..., bucket n, +Inf]``
    (each observation in one bucket, as prometheus-client stores them). Only the request path
    (the event loop's thread) writes to it; :meth:`write` (under the metrics' lock, from any
    thread) adds what changed since it last ran, so nothing is lost or counted twice.
    """

    __slots__ = ("child", "counts", "written")

    def __init__(self, child: Any, buckets: int) -> None:
        self.child = child
        self.counts: list[float] = [0.0] * (buckets + 2)
        self.written: list[float] = [0.0] * (buckets + 2)

    def write(self) -> None:
        counts, written = self.counts, self.written
        # prometheus-client has no public call to add n observations to a bucket: its child's
        # sum and per-bucket values are the ones Histogram.observe increments.
        values = [self.child._sum, *self.child._buckets]
        for i, value in enumerate(values):
            now = counts[i]
            if now != written[i]:
                value.inc(now - written[i])
                written[i] = now


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, when it is on (prometheus-client reads the same)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def package_version() -> str:
    try:
        return metadata.version("library")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def source_commit(configured: str | None = None) -> str:
    """The commit being served: ``configured`` (set at build time), else git's, else unknown."""
    if configured:
        return configured
    try:
        # git from PATH with fixed arguments, for the build's commit.
        done = subprocess.run(  # nosec B603 B607
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 (git from PATH, fixed args)
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def operation_name(sql: str) -> str:
    """The statement's first keyword (``SELECT``, ``INSERT`` ...), or ``OTHER``."""
    words = sql.lstrip(" \n\t(").split(None, 1)
    word = words[0].upper() if words else ""
    return word if word in _OPERATIONS else "OTHER"


class Metrics:
    """The service's metrics, their pre-bound label sets, and how to render them."""

    def __init__(self, *, version: str, commit: str, multiprocess_path: str | None = None) -> None:
        self.multiprocess_path = multiprocess_path
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.registry = registry = CollectorRegistry(auto_describe=True)
        if multiprocess_path is None:
            # Process figures only make sense per process; multiprocess mode cannot sum them.
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.http_duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["http_request_method", "http_route", "http_response_status_code"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.http_active = Gauge(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            ["http_request_method"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        pool = ["db_client_connection_pool_name"]
        self.pool_usage = Gauge(
            "db_client_connections_usage",
            "Connections of the pool that are currently in the state described by 'state'.",
            [*pool, "state"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_max = Gauge(
            "db_client_connections_max",
            "The maximum number of open connections allowed.",
            pool,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_pending = Gauge(
            "db_client_connections_pending_requests",
            "Requests waiting for an open connection of the pool.",
            pool,
            multiprocess_mode="livesum",
            registry=registry,
        )
        # With a read replica (docs/operations.md "Read replica"): what each process's tracker
        # saw last. The largest lag and the smallest "up" of the live processes.
        self.replica_lag = Gauge(
            "library_db_replica_lag_seconds",
            "The read replica's lag as this process last measured it (absent without one).",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.replica_up = Gauge(
            "library_db_replica_up",
            "1 while the read replica answers (lagging or not), 0 while it does not.",
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.db_duration = Histogram(
            "db_client_operation_duration_seconds",
            "Duration of database client operations.",
            ["db_system_name", "db_client_connection_pool_name", "db_operation_name"],
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.catalog_writes = Counter(
            "library_catalog_writes",
            "Books and authors created, updated and deleted.",
            ["resource", "operation"],
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "library_idempotent_replays",
            "POSTs answered with the stored response of their Idempotency-Key.",
            ["resource"],
            registry=registry,
        )
        self.responses = Counter(
            "library_http_responses",
            "Responses with status 304, 412, 428 or 429 (cache hits, lost updates, "
            "missing If-Match, rate limiting).",
            ["http_response_status_code"],
            registry=registry,
        )
        self.import_rows = Counter(
            "library_import_rows",
            "Rows of catalog imports, by outcome (imported, rejected, present).",
            ["outcome"],
            registry=registry,
        )
        self.build_info = Gauge(
            "library_build_info",
            "The version and commit being served (always 1).",
            ["version", "commit"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.build_info.labels(version, commit).set(1)

        # What the request path adds to (plain numbers), and what :meth:`write` writes it to.
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        self._by_route: dict[tuple[int, str, int], list[float]] = {}
        self._unwritten: list[_Unwritten] = []
        self._in_flight = dict.fromkeys((*_METHODS, "_OTHER"), 0)
        self._active = {m: self.http_active.labels(m) for m in self._in_flight}
        self._active_written = dict.fromkeys(self._in_flight, 0)
        self._counted = dict.fromkeys(COUNTED_STATUSES, 0)
        self._responses = {s: self.responses.labels(str(s)) for s in COUNTED_STATUSES}
        self._counted_written = dict.fromkeys(COUNTED_STATUSES, 0)
        self._writing = threading.Lock()
        self._routes = RouteTemplates()
        self._pools: dict[str, PoolSampler] = {}
        self._replica: ReplicaSampler | None = None
        self._sampler: threading.Thread | None = None
        self._stopped = threading.Event()

    # The request path ---------------------------------------------------------------------

    def request_started(self, method: str) -> None:
        """One more request in flight (the request-context middleware's observer)."""
        in_flight = self._in_flight
        in_flight[method if method in in_flight else "_OTHER"] += 1

    def request_finished(self, scope: Scope, method: str, status: int, seconds: float) -> None:
        """One finished request: its duration under its route template, method and status."""
        in_flight = self._in_flight
        if method not in in_flight:
            method = "_OTHER"
        in_flight[method] -= 1
        # The series by the route object's id (routes live as long as the app), method and
        # status: one look-up, the template found once per route.
        route = scope.get("route")
        key = (id(route), method, status)
        counts = self._by_route.get(key)
        if counts is None:
            counts = self._by_route[key] = self._request_series(scope, route, method, status)
        counts[bisect_left(HTTP_BUCKETS, seconds) + 1] += 1
        counts[0] += seconds
        if status in self._counted:
            self._counted[status] += 1

    def _request_series(self, scope: Scope, route: Any, method: str, status: int) -> list[float]:
        """The numbers of the duration series (method, the route's template, status)."""
        template = "" if route is None else self._routes.known.get(id(route))
        if template is None:
            template = self._routes.resolve(scope, route)
        key = (method, template, status)
        counts = self._requests.get(key)
        if counts is None:
            counts = self._requests[key] = self._series(
                self.http_duration.labels(method, template, str(status)), HTTP_BUCKETS
            )
        return counts

    def _series(self, child: Any, buckets: tuple[float, ...]) -> list[float]:
        """The numbers the request path adds to for the histogram series ``child``."""
        unwritten = _Unwritten(child, len(buckets))
        self._unwritten.append(unwritten)
        return unwritten.counts

    def query_observer(self, pool_name: str) -> QueryObserver:
        """A callback timing each statement of the pool ``pool_name`` (SQL text -> label set)."""
        by_statement: dict[str, list[float]] = {}
        by_operation: dict[str, list[float]] = {}
        histogram = self.db_duration

        def series(sql: str) -> list[float]:
            operation = operation_name(sql)
            counts = by_operation.get(operation)
            if counts is None:
                child = histogram.labels(_DB_SYSTEM, pool_name, operation)
                counts = by_operation[operation] = self._series(child, DB_BUCKETS)
            if len(by_statement) < _MAX_STATEMENTS:
                by_statement[sql] = counts
            return counts

        def observe(sql: str, seconds: float) -> None:
            counts = by_statement.get(sql) or series(sql)
            counts[bisect_left(DB_BUCKETS, seconds) + 1] += 1
            counts[0] += seconds

        return observe

    def write(self) -> None:
        """Write what the request path counted since the last call to the prometheus-client
        metrics (in multiprocess mode, to this process's files)."""
        with self._writing:
            for unwritten in list(self._unwritten):
                unwritten.write()
            active, written = self._active, self._active_written
            for method, now in list(self._in_flight.items()):
                if now != written[method]:
                    active[method].set(now)
                    written[method] = now
            responses, counted = self._responses, self._counted_written
            for status, now in list(self._counted.items()):
                if now != counted[status]:
                    responses[status].inc(now - counted[status])
                    counted[status] = now

    # Pools ----------------------------------------------------------------------------------

    def watch_pool(self, name: str, sampler: PoolSampler) -> None:
        """Report the pool ``name`` as ``sampler`` describes it (None: not open yet)."""
        self._pools[name] = sampler
        self.refresh_pools()

    def watch_replica(self, sampler: ReplicaSampler) -> None:
        """Report the read replica as ``sampler`` describes it: (answers, lag in seconds)."""
        self._replica = sampler
        self.refresh_pools()

    def refresh_pools(self) -> None:
        replica = self._replica
        if replica is not None:
            up, lag = replica()
            self.replica_up.set(1 if up else 0)
            if lag is not None:
                self.replica_lag.set(lag)
        for name, sampler in self._pools.items():
            usage = sampler()
            if usage is None:
                continue
            self.pool_usage.labels(name, "used").set(usage.used)
            self.pool_usage.labels(name, "idle").set(usage.idle)
            self.pool_max.labels(name).set(usage.max)
            self.pool_pending.labels(name).set(usage.pending)

    def start(self, interval: float = 1.0) -> None:
        """With several processes, keep this process's pool gauges current in its file."""
        if self.multiprocess_path is None or self._sampler is not None:
            return
        self._stopped.clear()

        def sample() -> None:
            while not self._stopped.wait(interval):
                self.write()
                self.refresh_pools()

        self._sampler = threading.Thread(target=sample, name="pool-metrics", daemon=True)
        self._sampler.start()

    def close(self) -> None:
        """Stop sampling, write what is left; in multiprocess mode, drop this process's live
        gauges."""
        self._stopped.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None
        self.write()
        if self.multiprocess_path is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), self.multiprocess_path
            )

    # Rendering ------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The metrics in the Prometheus text format (every process's, in multiprocess mode)."""
        self.write()
        self.refresh_pools()
        if self.multiprocess_path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=self.multiprocess_path
        )
        return generate_latest(registry)


def watch_engine(engine: Engine, observe: QueryObserver) -> None:
    """Time every statement the SQLAlchemy ``engine`` runs (its cursor executions)."""

    def before(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: Any) -> None:
        context._library_started = perf_counter()

    def after(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, _many: Any) -> None:
        observe(sql, perf_counter() - context._library_started)

    def failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        started = getattr(context, "_library_started", None)
        if started is not None and exception_context.statement is not None:
            observe(exception_context.statement, perf_counter() - started)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


class _ReusePortServer(ThreadingMixIn, WSGIServer):
    """One port for every worker process (SO_REUSEPORT); any of them renders every process's."""

    daemon_threads = True

    def server_bind(self) -> None:
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class MetricsServer:
    """``/metrics`` on a port of its own, off the public API, served by a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") not in ("/metrics", "/"):
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: try /metrics\n"]
            body = metrics.render()
            start_response(
                "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
            )
            return [body]

        self._server = make_server(
            host, port, app, server_class=_ReusePortServer, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
