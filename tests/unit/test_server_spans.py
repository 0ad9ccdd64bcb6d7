"""The server span's own sampling decision must be the configured sampler's, on the same ids."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind

from shared.observability.spans import HeadSampling, ServerSpans
from shared.web.middleware import RequestContextMiddleware


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _serve(spans: ServerSpans, headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    app = RequestContextMiddleware(_app, spans=spans)
    started: dict[str, Any] = {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return dict(started["headers"])


@pytest.mark.parametrize(
    "sampler", [TraceIdRatioBased(0.5), ParentBasedTraceIdRatio(0.5)], ids=["ratio", "parent"]
)
def test_a_ratio_decides_on_the_trace_id_the_span_gets(sampler: Sampler) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer: Any = provider.get_tracer("t")  # the SDK's Tracer
    spans = ServerSpans(tracer)
    assert spans.sampling is not None  # the fast decision, not the SDK's for each request

    decisions = []
    for _ in range(200):
        _, trace_id, span_id, flags = _serve(spans, [])[b"traceparent"].decode().split("-")
        sampled = bool(int(flags, 16) & 1)
        bound = TraceIdRatioBased(0.5).bound
        assert sampled == ((int(trace_id, 16) & TraceIdRatioBased.TRACE_ID_LIMIT) < bound)
        decisions.append((trace_id, span_id, sampled))

    exported = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER
    }
    assert exported == {(t, s) for t, s, sampled in decisions if sampled}
    assert 60 < len(exported) < 140  # half, not a quarter (the ratio applied once)


def test_the_standard_samplers_are_recognised_and_others_left_to_the_sdk() -> None:
    class Custom(Sampler):
        def should_sample(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        def get_description(self) -> str:
            return "custom"

    for sampler in (ALWAYS_ON, ALWAYS_OFF, DEFAULT_ON, TraceIdRatioBased(0.1)):
        assert HeadSampling.of(sampler) is not None
    assert HeadSampling.of(Custom()) is None
    assert HeadSampling.of(ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)) is None


def test_a_request_not_sampled_has_ids_in_its_lines_and_response_and_no_spans_under_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not sampled (a new trace at ratio 0): no OpenTelemetry span or context, but non-zero
    ids, the same in the response's traceparent and in every log line; the use cases' and the
    statements' tracers make nothing under it (not even a trace of their own)."""
    import json

    import structlog
    from opentelemetry import trace

    from shared.logging import configure_logging
    from shared.observability.spans import FollowsRequests, StatementSpans
    from shared.observability.tracing import add_trace_ids, unsampled_ids

    exporter = InMemorySpanExporter()
    never = TracerProvider(sampler=ParentBasedTraceIdRatio(0.0))  # the server's: no new trace
    never.add_span_processor(SimpleSpanProcessor(exporter))
    # Always, for anything else the SDK is asked: a span made under the request would be a
    # sampled trace of its own.
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server_tracer: Any = never.get_tracer("server")
    spans = ServerSpans(server_tracer)
    use_cases = FollowsRequests(provider.get_tracer("use cases"))
    statements = StatementSpans(provider.get_tracer("db"))  # type: ignore[arg-type]
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        structlog.stdlib.get_logger("t").info("inside", marker="unsampled")
        with use_cases.start_as_current_span("books.add_book") as span:
            seen.append(span.is_recording())
        seen.append(statements.start("SELECT 1", object()))
        seen.append(trace.get_current_span().get_span_context().is_valid)
        await _app(scope, receive, send)

    configure_logging("INFO", "json", (add_trace_ids,))
    capsys.readouterr()
    served: dict[str, Any] = {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            served.update(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    asyncio.run(RequestContextMiddleware(app, spans=spans)(scope, receive, send))

    _, trace_id, span_id, flags = dict(served["headers"])[b"traceparent"].decode().split("-")
    assert int(trace_id, 16)
    assert int(span_id, 16)
    assert (len(trace_id), len(span_id), int(flags, 16) & 1) == (32, 16, 0)
    assert seen == [False, None, False]
    assert exporter.get_finished_spans() == ()
    assert unsampled_ids.get() is None  # reset after the request
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert {line["event"] for line in lines} >= {"inside", "request"}
    for line in lines:
        assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)


def test_new_trace_ids_are_distinct_and_never_zero() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    tracer: Any = provider.get_tracer("t")
    spans = ServerSpans(tracer)
    seen = set()
    for _ in range(500):
        _, trace_id, span_id, _ = _serve(spans, [])[b"traceparent"].decode().split("-")
        assert int(trace_id, 16)
        assert int(span_id, 16)
        seen.add((trace_id, span_id))
    assert len(seen) == 500
    assert len({trace_id for trace_id, _ in seen}) == 500
