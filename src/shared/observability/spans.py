"""The server span of each request and the read pool's statement spans, made by us, cheaply.

The contrib FastAPI and asyncpg instrumentations did this before, at a cost paid by every
request whether it was sampled or not (docs/operations.md "What it costs"): the FastAPI one
matched the route again for the span's name, collected a dozen request attributes, wrapped each
ASGI message and added two middleware layers; the asyncpg one built each statement's attributes
before asking the sampler; the SDK's own ``start_span`` is some 40,000 instructions even when
its sampler says no. Here:

- :class:`ServerSpans`, which the request-context middleware (shared.web.middleware, the
  outermost layer) begins before the app and ends after the access line, makes the sampling
  decision itself for the samplers ``OTEL_TRACES_SAMPLER`` names (``always_on``,
  ``always_off``, ``traceidratio`` and their ``parentbased_`` forms: the same rule on the same
  trace id, see :class:`HeadSampling`). A new trace that is not sampled gets no OpenTelemetry
  span or context at all: two random ids, as hex in ``tracing.unsampled_ids`` (its log lines
  carry them, its response names them, and :class:`FollowsRequests` and
  :class:`StatementSpans` make nothing under it). A request carrying a caller's context gets a
  (non-recording, when not sampled) span made current; a sampled one the SDK's span, with the
  attributes the contrib instrumentation gives it. Any other sampler is asked through the
  SDK, for every request.
- :class:`StatementSpans` makes the read pool's span for a statement only when the current
  span is recording (a sampled request; ``unsampled_ids`` tells the others at once), named
  and attributed as the asyncpg instrumentation did; the statement is recorded as sent, with
  ``$1`` placeholders, never with values.

The attribute names follow ``OTEL_SEMCONV_STABILITY_OPT_IN`` as the contrib instrumentations
do: the older names by default (``http.method``, ``http.status_code``, ``db.statement`` ...),
the stable ones with ``http`` / ``database`` (``http.request.method``,
``http.response.status_code``, ``url.path``, ``db.query.text`` ...), both with ``http/dup`` /
``database/dup``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import Tracer
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from starlette.types import Scope

from shared.observability.routes import RouteTemplates
from shared.observability.tracing import unsampled_ids

_TRACE_ID_LIMIT: Final = TraceIdRatioBased.TRACE_ID_LIMIT
_METHODS: Final = frozenset(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]
)
# The headers the default propagators (tracecontext, baggage) read: without any of them there
# is nothing to extract.
_PROPAGATED: Final = frozenset([b"traceparent", b"tracestate", b"baggage"])
_DEFAULT_PROPAGATORS: Final = frozenset(["tracecontext", "baggage"])
_TRACEPARENT: Final = b"traceparent"
_BIT_192: Final = 1 << 192
_TRACE_ID_LOW_BITS: Final = _TRACE_ID_LIMIT << 64
_ZERO_TRACE_ID: Final = "0" * 32
_ZERO_SPAN_ID: Final = "0" * 16
_getrandbits = random.getrandbits  # RandomIdGenerator's source
_EMPTY: Final = otel_context.Context()
_FLAGS: Final = {
    flag: TraceFlags(flag) for flag in (TraceFlags.DEFAULT, TraceFlags.RANDOM_TRACE_ID)
}
_LEADING_COMMENT = re.compile(r"^/\*.*?\*/")
_MAX_STATEMENTS: Final = 2_000  # statements whose name and attributes are kept


def semconv_modes(environ: Mapping[str, str] = os.environ) -> tuple[bool, bool, bool, bool]:
    """(old http names, new http names, old db names, new db names), as the contrib
    instrumentations read ``OTEL_SEMCONV_STABILITY_OPT_IN``."""
    opted = {item.strip() for item in environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")}

    def modes(signal: str) -> tuple[bool, bool]:
        if f"{signal}/dup" in opted:
            return True, True
        if signal in opted:
            return False, True
        return True, False

    return (*modes("http"), *modes("database"))


class HeadSampling:
    """A standard sampler's decision for a server span, without the SDK's span machinery.

    ``ParentBased`` with its default delegates follows a remote parent's sampled flag; the root
    rule (``ALWAYS_ON``, ``ALWAYS_OFF``, ``TraceIdRatioBased``) is the SDK's own: sampled when
    the trace id's low 64 bits are below the ratio's bound. :meth:`of` gives None for any other
    sampler (a custom one must be asked through the SDK).
    """

    __slots__ = ("bound", "follows_parent")

    def __init__(self, bound: int, follows_parent: bool) -> None:
        self.bound = bound
        self.follows_parent = follows_parent

    @classmethod
    def of(cls, sampler: object) -> HeadSampling | None:
        root = sampler
        follows_parent = isinstance(sampler, ParentBased)
        if follows_parent:
            delegates = (
                getattr(sampler, "_remote_parent_sampled", None),
                getattr(sampler, "_remote_parent_not_sampled", None),
            )
            if delegates != (ALWAYS_ON, ALWAYS_OFF):
                return None
            root = getattr(sampler, "_root", None)
        if root is ALWAYS_ON:
            return cls(_TRACE_ID_LIMIT + 1, follows_parent)
        if root is ALWAYS_OFF:
            return cls(0, follows_parent)
        if type(root) is TraceIdRatioBased:
            return cls(root.bound, follows_parent)
        return None


class _PresetTraceId(IdGenerator):
    """The server spans' tracer's id generator: the trace id the sampling decision was made on,
    once, then the provider's generator (so the SDK's sampler sees the same trace id)."""

    def __init__(self, ids: IdGenerator) -> None:
        self.ids = ids
        self.next_trace_id = 0

    def generate_span_id(self) -> int:
        return self.ids.generate_span_id()

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, 0
        return trace_id or self.ids.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self.ids.is_trace_id_random()


class ServerSpans:
    """Each HTTP request's server span and its W3C ``traceparent``, for the request-context
    middleware (shared.web.middleware), which calls :meth:`begin` before the app and the
    access line, and :meth:`end` after them: the access line is in the span too.

    A request that carries no propagated context and is not sampled (most of them) gets no
    OpenTelemetry span and no OpenTelemetry context at all: its ids are two random numbers,
    kept as hex in :data:`unsampled_ids` (what the log lines and the use cases' and
    statements' spans read) and named by the response's ``traceparent``. A sampled one, or
    one whose caller propagated a context, gets a span made current as the SDK would.
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.sampling = HeadSampling.of(tracer.sampler)
        preset = tracer.id_generator
        if not isinstance(preset, _PresetTraceId):  # the first stack built with this tracer
            preset = tracer.id_generator = _PresetTraceId(preset)
        self.preset = preset
        self.ids = preset.ids
        # The SDK's default generator draws its ids from ``random``: drawn here in one call.
        self.random_ids = type(self.ids) is RandomIdGenerator
        # The flags of a span not sampled: the W3C "random trace id" flag where it holds.
        self.root_flags = _FLAGS[
            TraceFlags.RANDOM_TRACE_ID if self.ids.is_trace_id_random() else TraceFlags.DEFAULT
        ]
        self.root_suffix = "-%02x" % self.root_flags  # noqa: UP031
        configured = os.environ.get("OTEL_PROPAGATORS", "tracecontext,baggage")
        named = {name.strip().lower() for name in configured.split(",") if name.strip()}
        # Other propagators read other headers: let them look at every request.
        self.extract_always = not named <= _DEFAULT_PROPAGATORS
        # New traces are decided here without the SDK (a standard sampler, the default
        # propagators), on ``bits``: the trace id's low 64 bits, where the 192 random bits hold
        # them, against the sampler's bound moved there too.
        sampling = self.sampling
        self.new_traces_here = sampling is not None and not self.extract_always
        self.shifted_bound = sampling.bound << 64 if sampling is not None else 0
        # The headers the middleware looks for to call the propagators (all: always).
        self.propagated_headers = _PROPAGATED
        self.old_names, self.new_names, _, _ = semconv_modes()
        self.templates = RouteTemplates()

    def begin(
        self, scope: Scope, method: str, propagated: bool
    ) -> tuple[Any, trace.Span | None, tuple[bytes, bytes]]:
        """(what :meth:`end` resets, the span or None, the response's ``traceparent``).
        ``propagated``: the request carries a header the propagators read."""
        if self.new_traces_here and not propagated:
            # A new trace: 192 random bits, the trace id's 128 and the span id's 64, and their
            # 48 hex digits (hex() of them under a leading 1 keeps the leading zeros).
            bits = _getrandbits(192) if self.random_ids else 0
            text = hex(bits | _BIT_192)
            trace_hex = text[3:35]
            span_hex = text[35:]
            if trace_hex == _ZERO_TRACE_ID or span_hex == _ZERO_SPAN_ID:  # W3C: never zero
                bits = (self.ids.generate_trace_id() << 64) | self.ids.generate_span_id()
                text = hex(bits | _BIT_192)
                trace_hex = text[3:35]
                span_hex = text[35:]
            # The sampler's rule: the trace id's low 64 bits below the bound.
            if bits & _TRACE_ID_LOW_BITS < self.shifted_bound:
                trace_id = bits >> 64
                self.preset.next_trace_id = trace_id  # the SDK's sampler sees the same id
                return self._attach(self._recorded(scope, method, None), None)
            token = unsampled_ids.set((trace_hex, span_hex))
            header = f"00-{trace_hex}-{span_hex}{self.root_suffix}".encode()
            return token, None, (_TRACEPARENT, header)
        parent_context = (
            propagate.extract(_carrier(scope)) if propagated or self.extract_always else None
        )
        return self._attach(self._start(scope, method, parent_context), parent_context)

    def end(
        self,
        begun: tuple[Any, trace.Span | None, tuple[bytes, bytes]],
        scope: Scope,
        method: str,
        status: int,
        error: BaseException | None,
    ) -> None:
        """After the response and the access line: the span ended, the context reset."""
        token, span, _ = begun
        if span is None:
            unsampled_ids.reset(token)
            return
        otel_context.detach(token)
        if span.is_recording():
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            self._finish(span, scope, method, status)

    def _attach(
        self, span: trace.Span, parent_context: Any
    ) -> tuple[Any, trace.Span, tuple[bytes, bytes]]:
        ids = span.get_span_context()
        # %-formatting: half the instructions of an f-string's format specs, for 128 bits.
        traceparent = b"00-%032x-%016x-%02x" % (ids.trace_id, ids.span_id, ids.trace_flags)
        # The request's context starts empty, or from what the caller propagated.
        current = trace.set_span_in_context(
            span, _EMPTY if parent_context is None else parent_context
        )
        return otel_context.attach(current), span, (_TRACEPARENT, traceparent)

    def _start(self, scope: Scope, method: str, parent_context: Any) -> trace.Span:
        sampling = self.sampling
        if sampling is None:  # a sampler of another kind: the SDK asks it
            return self._recorded(scope, method, parent_context)
        parent = None
        if parent_context is not None:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                parent = None
        if parent is None:
            trace_id = self.ids.generate_trace_id()
            flags = self.root_flags
            sampled = (trace_id & _TRACE_ID_LIMIT) < sampling.bound
            trace_state = None
        else:
            trace_id = parent.trace_id
            flags = _FLAGS[parent.trace_flags & TraceFlags.RANDOM_TRACE_ID]
            if sampling.follows_parent:
                sampled = parent.trace_flags.sampled
            else:
                sampled = (trace_id & _TRACE_ID_LIMIT) < sampling.bound
            trace_state = parent.trace_state
        if sampled:
            if parent is None:
                self.preset.next_trace_id = trace_id  # the SDK's sampler sees the same id
            return self._recorded(scope, method, parent_context)
        # Positional arguments: SpanContext's keywords cost some 2,000 instructions more.
        return NonRecordingSpan(
            SpanContext(trace_id, self.ids.generate_span_id(), False, flags, trace_state)
        )

    def _recorded(self, scope: Scope, method: str, parent_context: Any) -> trace.Span:
        return self.tracer.start_span(
            method if method in _METHODS else "HTTP",
            context=parent_context,
            kind=SpanKind.SERVER,
            attributes=self._request_attributes(scope, method),
        )

    def _request_attributes(self, scope: Scope, method: str) -> dict[str, Any]:
        """What the contrib ASGI instrumentation records of a request."""
        old, new = self.old_names, self.new_names
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        agent = headers.get(b"user-agent", b"").decode("latin-1")
        server = scope.get("server") or ("0.0.0.0", 80)  # noqa: S104  # nosec B104 - the ASGI default, not a bind
        client = scope.get("client")
        scheme = scope.get("scheme", "http")
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        known = method if method in _METHODS else "_OTHER"
        result: dict[str, Any] = {}
        if old:
            server_host = server[0] + (f":{server[1]}" if str(server[1]) != "80" else "")
            url = f"{scheme}://{host or server_host}{path}" + (f"?{query}" if query else "")
            result.update(
                {
                    "http.scheme": scheme,
                    "http.host": server_host,
                    "http.flavor": scope.get("http_version", ""),
                    "http.target": path,
                    "http.url": url,
                    "http.method": known,
                    "http.server_name": host,
                    "http.user_agent": agent,
                }
            )
            if server[1]:
                result["net.host.port"] = int(server[1])
            if client:
                result["net.peer.ip"] = client[0]
                result["net.peer.port"] = client[1]
        if new:
            result.update(
                {
                    "url.scheme": scheme,
                    "server.address": server[0],
                    "network.protocol.version": scope.get("http_version", ""),
                    "url.path": path,
                    "http.request.method": known,
                    "user_agent.original": agent,
                }
            )
            if server[1]:
                result["server.port"] = int(server[1])
            if query:
                result["url.query"] = query
            if known != method:
                result["http.request.method_original"] = method
            if client:
                result["client.address"] = client[0]
                result["client.port"] = client[1]
        return {key: value for key, value in result.items() if value not in ("", None)}

    def _finish(self, span: trace.Span, scope: Scope, method: str, status: int) -> None:
        template = self.templates.of(scope)
        if template:
            span.update_name(f"{method if method in _METHODS else 'HTTP'} {template}")
            span.set_attribute("http.route", template)
        if status:
            if self.old_names:
                span.set_attribute("http.status_code", status)
            if self.new_names:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
        if status >= 500 or not status:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def _carrier(scope: Scope) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
    return carrier


class StatementSpans:
    """The read pool's span per statement, under a recording span only (see the module)."""

    # Set inside a request not sampled: the read pool looks at it before calling start.
    untraced = unsampled_ids

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        _, _, self.old_names, self.new_names = semconv_modes()
        self._statements: dict[str, tuple[str, dict[str, Any]]] = {}
        self._connection: dict[str, Any] | None = None

    def start(self, sql: str, connection: Any) -> trace.Span | None:
        """A started span for ``sql`` on ``connection``, or None (the request is not sampled)."""
        # Inside a request not sampled, nothing is current: the request's mark says so.
        if unsampled_ids.get() is not None or not trace.get_current_span().is_recording():
            return None
        known = self._statements.get(sql)
        if known is None:
            known = self._describe(sql, connection)
        name, attributes = known
        return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def end(self, span: trace.Span, error: BaseException | None) -> None:
        if isinstance(error, Exception):
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR))
            if self.new_names:
                span.set_attribute("error.type", type(error).__qualname__)
        span.end()

    def _describe(self, sql: str, connection: Any) -> tuple[str, dict[str, Any]]:
        """The span's name (the statement's first word) and attributes, as the asyncpg
        instrumentation gives them."""
        words = _LEADING_COMMENT.sub("", sql).split()
        name = words[0] if words else ""
        attributes = {**self._connection_attributes(connection)}
        if self.old_names:
            attributes["db.statement"] = sql
        if self.new_names:
            attributes["db.query.text"] = sql
        if len(self._statements) < _MAX_STATEMENTS:
            self._statements[sql] = (name, attributes)
        return name, attributes

    def _connection_attributes(self, connection: Any) -> dict[str, Any]:
        # One pool, one DSN: every connection's are the same, taken from the first.
        if self._connection is not None:
            return self._connection
        old, new = self.old_names, self.new_names
        params = getattr(connection, "_params", None)
        database = getattr(params, "database", None)
        user = getattr(params, "user", None)
        address = getattr(connection, "_addr", None)
        result: dict[str, Any] = {}
        if old:
            result["db.system"] = "postgresql"
            if database:
                result["db.name"] = database
            if user:
                result["db.user"] = user
        if new:
            result["db.system.name"] = "postgresql"
            if database:
                result["db.namespace"] = database
        if isinstance(address, tuple):
            host, port, old_transport, new_transport = address[0], address[1], "ip_tcp", "tcp"
        else:
            host, port, old_transport, new_transport = address, None, "other", "pipe"
        if old:
            result.update({"net.peer.name": host, "net.transport": old_transport})
            if port:
                result["net.peer.port"] = port
        if new:
            result.update({"server.address": host, "network.transport": new_transport})
            if port:
                result["server.port"] = port
        self._connection = {key: value for key, value in result.items() if value}
        return self._connection


class FollowsRequests(trace.Tracer):
    """A tracer (the use cases', the write side's statements') that makes no span at all inside
    a request not sampled: no OpenTelemetry context is current there (:class:`ServerSpans`), so
    the SDK would start a new trace of its own. Elsewhere, and inside a sampled request, it is
    the SDK's tracer."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        if context is None and unsampled_ids.get() is not None:
            return trace.INVALID_SPAN
        return self.tracer.start_span(name, context, *args, **kwargs)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        if context is None and unsampled_ids.get() is not None:
            yield trace.INVALID_SPAN
            return
        with self.tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span
