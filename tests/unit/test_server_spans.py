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


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _serve(spans: ServerSpans, headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    started: dict[str, Any] = {}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
    asyncio.run(spans(scope, receive, send))
    return dict(started["headers"])


@pytest.mark.parametrize(
    "sampler", [TraceIdRatioBased(0.5), ParentBasedTraceIdRatio(0.5)], ids=["ratio", "parent"]
)
def test_a_ratio_decides_on_the_trace_id_the_span_gets(sampler: Sampler) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer: Any = provider.get_tracer("t")  # the SDK's Tracer
    spans = ServerSpans(_app, tracer=tracer)
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
