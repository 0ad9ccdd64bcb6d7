"""OpenTelemetry traces: on when an OTLP endpoint is configured, and absent otherwise.

Configured through the standard ``OTEL_*`` variables only: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on, and the SDK and exporter read the rest
themselves (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and its
argument, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*`` ...). Without an endpoint nothing is
installed: no middleware, no event listener, no patched driver method, and this module does not
even import the SDK.

When on: the server span of each request (W3C trace context read from ``traceparent``) and
the read pool's statement spans are ours (shared.observability.spans: the contrib FastAPI and
asyncpg instrumentations cost a request several times what the request itself does, sampled or
not); the write side's statements are the contrib SQLAlchemy instrumentation's. Statements are
recorded as sent, with placeholders: parameter values are never captured. Responses carry
``traceparent`` naming the server span; every log line of a traced request carries
``trace_id`` and ``span_id``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import get_current_span
from structlog.typing import EventDict, WrappedLogger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from sqlalchemy.engine import Engine

    from shared.observability.spans import ServerSpans
    from shared.persistence.driver import StatementObservers
    from shared.persistence.reads import ReadPool

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# The trace id and span id (hex) of the request being served when it is not sampled: such a
# request has no OpenTelemetry span or context (shared.observability.spans.ServerSpans), only
# these, which its log lines carry and which tell the spans under it not to be made.
unsampled_ids: ContextVar[tuple[str, str] | None] = ContextVar(
    "library.unsampled_trace_ids", default=None
)


def tracing_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """True when an OTLP endpoint is set and neither the SDK nor trace export is turned off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


def tracer_provider_from_env(version: str) -> TracerProvider | None:
    """A tracer provider exporting over OTLP (HTTP/protobuf) as ``OTEL_*`` say, or None (off)."""
    if not tracing_configured():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, str] = {"service.version": version}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = "library"
    created = Resource.create(attributes)
    provider = TracerProvider(resource=_resource_hashed_once(created))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _resource_hashed_once(resource: Any) -> Any:
    """``resource``, whose hash is computed once: the OTLP encoder groups every exported span
    by its resource, and the SDK's ``Resource.__hash__`` writes the attributes out as JSON for
    each (about 40,000 instructions a span). Its attributes cannot change after creation."""
    from opentelemetry.sdk.resources import Resource

    class HashedOnce(Resource):
        def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
            super().__init__(attributes, schema_url)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash

    return HashedOnce(resource.attributes, resource.schema_url)


def add_trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """structlog processor: the current span's ``trace_id`` and ``span_id``, when there is one
    (in a request not sampled: the request's)."""
    ids = unsampled_ids.get()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
        return event
    context = get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = "%032x" % context.trace_id  # noqa: UP031 (the cheaper form, per line)
        event["span_id"] = "%016x" % context.span_id  # noqa: UP031
    return event


class Tracing:
    """Installs the spans on one app, its engine and its read pool."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.metrics import NoOpMeterProvider

        self.provider = provider
        # The metrics are Prometheus's (shared.observability.metrics): the instrumentation's
        # own OpenTelemetry metrics are not recorded at all.
        self._meters = NoOpMeterProvider()
        self._engine_listeners: list[tuple[Any, str, Any]] = []
        self._read_pool: ReadPool | None = None
        self._driver: StatementObservers | None = None

    def tracer(self, name: str) -> Tracer:
        """The tracer of the use cases: no span inside a request not sampled."""
        from shared.observability.spans import FollowsRequests

        return FollowsRequests(self.provider.get_tracer(name))

    def server_spans(self) -> ServerSpans:
        """The server span of each request, for the request-context middleware (the outermost
        layer: the access line is in the span); ``traceparent`` read in and written out."""
        from opentelemetry.sdk.trace import Tracer as SdkTracer

        from shared.observability.spans import ServerSpans

        tracer = self.provider.get_tracer("library.http")
        if not isinstance(tracer, SdkTracer):
            raise TypeError("tracing needs the OpenTelemetry SDK's tracer provider")
        return ServerSpans(tracer)

    def instrument_engine(self, engine: Engine) -> None:
        """A span per statement of the SQLAlchemy ``engine`` (the write side)."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.sqlalchemy.version import __version__ as version

        from shared.observability.spans import FollowsRequests

        # No statement span inside a request not sampled (a new trace of its own, otherwise).
        tracer = FollowsRequests(
            self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", version)
        )
        usage = self._meters.get_meter("sqlalchemy").create_up_down_counter("unused")
        # EngineTracer keeps every engine's listeners in one class-wide list: remember ours.
        registered = EngineTracer._remove_event_listener_params
        first = len(registered)
        EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
        self._engine_listeners.extend(registered[first:])

    def instrument_read_pool(self, read_pool: ReadPool) -> None:
        """A span per statement of the read pool, in sampled requests."""
        from opentelemetry.sdk.trace import Tracer as SdkTracer

        from shared.observability.spans import StatementSpans

        tracer = self.provider.get_tracer("library.db")
        if not isinstance(tracer, SdkTracer):
            raise TypeError("tracing needs the OpenTelemetry SDK's tracer provider")
        read_pool.statement_spans = StatementSpans(tracer)
        self._read_pool = read_pool

    def instrument_driver(self, observers: StatementObservers) -> None:
        """A span per statement units of work send on asyncpg directly (a book's INSERT), in
        sampled requests, as SQLAlchemy's are (the same tracer as the read pool's)."""
        from opentelemetry.sdk.trace import Tracer as SdkTracer

        from shared.observability.spans import StatementSpans

        tracer = self.provider.get_tracer("library.db")
        if not isinstance(tracer, SdkTracer):
            raise TypeError("tracing needs the OpenTelemetry SDK's tracer provider")
        observers.statement_spans = StatementSpans(tracer)
        self._driver = observers

    def shutdown(self) -> None:
        """Remove what was installed on the read pool and the engine; flush the spans left."""
        if self._read_pool is not None:
            self._read_pool.statement_spans = None
            self._read_pool = None
        if self._driver is not None:
            self._driver.statement_spans = None
            self._driver = None
        from sqlalchemy import event

        for target_ref, name, listener in self._engine_listeners:
            target = target_ref()
            if target is not None and event.contains(target, name, listener):
                event.remove(target, name, listener)
        self._engine_listeners.clear()
        self.provider.force_flush()
