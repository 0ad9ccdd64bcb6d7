"""Traces captured with the in-memory exporter: the spans an operator's backend would receive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import SpanKind

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from shared.web.middleware import RequestContextMiddleware
from tests.auth import bearer
from tests.integration.helpers import API, create_author, create_book, running_app

pytestmark = pytest.mark.usefixtures("clean_database")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with tracing on, its spans kept in memory."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    container = RootContainer()
    container.settings.override(settings)
    container.tracer_provider.override(providers.Object(provider))
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as http:
            yield http


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def is_database(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return span.kind is SpanKind.CLIENT and (
        attributes.get("db.system") == "postgresql"
        or attributes.get("db.system.name") == "postgresql"
    )


def statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text"))


async def test_a_get_is_a_server_span_with_one_database_span_and_no_values(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    author = await create_author(traced)
    book = await create_book(traced, "The Dispossessed", [author["id"]], isbn="0-06-051275-X")
    exporter.clear()
    capsys.readouterr()

    response = await traced.get(
        f"{API}/books/{book['id']}",
        headers={"traceparent": TRACEPARENT, "X-Request-ID": "traced-get"},
    )

    assert response.status_code == 200
    spans = list(exporter.get_finished_spans())
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == "GET /api/v1/books/{book_id}"
    assert (server.attributes or {})["http.route"] == "/api/v1/books/{book_id}"
    # W3C trace context in: the caller's trace, the caller's span as parent ...
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_ID
    # ... and out: the response names the server span.
    span_id = format(server.context.span_id, "016x")
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"

    [database] = [s for s in children(spans, server) if is_database(s)]
    # In the request's trace (the outbox relay's deliveries run in traces of their own).
    in_trace = [s for s in spans if s.context.trace_id == server.context.trace_id]
    assert len([s for s in in_trace if is_database(s)]) == 1
    assert statement(database).lstrip().upper().startswith("SELECT")
    assert "$1" in statement(database)
    for value in (database.attributes or {}).values():
        assert book["id"] not in str(value)
        assert "Dispossessed" not in str(value)

    # Every log line of the request carries the trace and the server span.
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    mine = [line for line in lines if line.get("request_id") == "traced-get"]
    assert mine
    for line in mine:
        assert (line["trace_id"], line["span_id"]) == (TRACE_ID, span_id)


async def test_each_use_case_has_its_span_over_its_statements(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    author = await create_author(traced)
    exporter.clear()

    await create_book(traced, "The Lathe of Heaven", [author["id"]])

    spans = list(exporter.get_finished_spans())
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    [use_case] = [s for s in spans if s.name == "books.add_book"]
    assert use_case.parent is not None
    assert use_case.parent.span_id == server.context.span_id
    statements = [s for s in children(spans, use_case) if is_database(s)]
    assert statements  # the write side's SQLAlchemy spans, under the use case
    for span in statements:
        assert "Lathe" not in json.dumps(dict(span.attributes or {}), default=str)


async def test_without_an_endpoint_nothing_is_installed(settings: Settings) -> None:
    async with running_app(settings) as (app, client):
        assert app.state.container.observability().tracing is None
        [edge] = [m for m in app.user_middleware if m.cls is RequestContextMiddleware]  # type: ignore[comparison-overlap]
        assert edge.kwargs["spans"] is None
        assert app.state.container.read_pool().statement_spans is None
        assert not hasattr(asyncpg.Connection.fetchrow, "__wrapped__")
        response = await client.get(f"{API}/books", headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200
        assert "traceparent" not in response.headers


async def test_tracing_is_removed_from_the_read_pool_at_shutdown(settings: Settings) -> None:
    provider: Any = TracerProvider()
    container = RootContainer()
    container.settings.override(settings)
    container.tracer_provider.override(providers.Object(provider))
    app = create_app(container=container)
    read_pool = container.read_pool()
    async with app.router.lifespan_context(app):
        assert read_pool.statement_spans is not None
    assert read_pool.statement_spans is None


async def test_requests_not_sampled_carry_ids_and_record_nothing(
    settings: Settings, exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """With parentbased_traceidratio at 0: a new trace is never sampled, a caller's sampled
    trace always is; an unsampled request still has ids (its log lines, its response)."""
    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(0.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    container = RootContainer()
    container.settings.override(settings)
    container.tracer_provider.override(providers.Object(provider))
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            capsys.readouterr()
            unsampled = await http.get(f"{API}/books", headers={"X-Request-ID": "unsampled"})
            assert unsampled.status_code == 200
            assert exporter.get_finished_spans() == ()
            version, trace_id, span_id, flags = unsampled.headers["traceparent"].split("-")
            assert (version, len(trace_id), len(span_id)) == ("00", 32, 16)
            assert int(flags, 16) & 1 == 0  # not sampled
            lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
            mine = [line for line in lines if line.get("request_id") == "unsampled"]
            assert mine
            assert {(line["trace_id"], line["span_id"]) for line in mine} == {(trace_id, span_id)}

            not_sampled_parent = f"00-{TRACE_ID}-{PARENT_ID}-00"
            followed = await http.get(f"{API}/books", headers={"traceparent": not_sampled_parent})
            assert followed.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
            assert followed.headers["traceparent"].endswith("-00")
            assert exporter.get_finished_spans() == ()

            sampled = await http.get(f"{API}/books", headers={"traceparent": TRACEPARENT})
            assert sampled.headers["traceparent"].endswith("-01")
            spans = list(exporter.get_finished_spans())
            [server] = [s for s in spans if s.kind is SpanKind.SERVER]
            assert format(server.context.trace_id, "032x") == TRACE_ID
            assert [s for s in children(spans, server) if is_database(s)]


async def test_writes_not_sampled_leave_no_spans_and_sampled_ones_their_tree(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    """At 50%: a request not sampled has no span anywhere (its use case and its SQLAlchemy
    statements do not start traces of their own); a sampled one has its use case under its
    server span and its statements under the use case."""
    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(0.5))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    container = RootContainer()
    container.settings.override(settings)
    container.tracer_provider.override(providers.Object(provider))
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer()
        ) as http:
            author = await create_author(http)
            exporter.clear()
            sampled: set[str] = set()
            unsampled: set[str] = set()
            for n in range(24):
                response = await http.post(
                    f"{API}/books", json={"title": f"Traced {n}", "author_ids": [author["id"]]}
                )
                assert response.status_code == 201, response.text
                _, trace_id, _, flags = response.headers["traceparent"].split("-")
                (sampled if int(flags, 16) & 1 else unsampled).add(trace_id)
            assert sampled  # 24 requests at 50%
            assert unsampled
            spans = list(exporter.get_finished_spans())
            traces = {format(s.context.trace_id, "032x") for s in spans}
            assert traces == sampled
            for trace_id in sampled:
                mine = [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
                [server] = [s for s in mine if s.kind is SpanKind.SERVER]
                [use_case] = [s for s in mine if s.name == "books.add_book"]
                assert use_case.parent is not None
                assert use_case.parent.span_id == server.context.span_id
                assert [s for s in children(mine, use_case) if is_database(s)]
