"""/metrics after a scripted workload: what an operator's Prometheus would scrape.

Counts must match the requests sent, routes must be templates, no label may carry an id, and
the pools' gauges must show what the pools hold.
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.observability.metrics import package_version
from shared.settings import Settings
from tests.integration.helpers import API, create_author, create_book, running_app

pytestmark = pytest.mark.usefixtures("clean_database")

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def parse(exposition: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    matching = [v for got, v in samples.get(name, []) if labels.items() <= got.items()]
    assert len(matching) == 1, f"{name}{labels}: {matching}"
    return matching[0]


def request_counts(samples: Samples) -> Counter[tuple[str, str, str]]:
    return Counter(
        {
            (
                labels["http_request_method"],
                labels["http_route"],
                labels["http_response_status_code"],
            ): int(count)
            for labels, count in samples["http_server_request_duration_seconds_count"]
            if labels["http_route"] != "/metrics"
        }
    )


async def test_counts_match_the_requests_sent_under_route_templates(settings: Settings) -> None:
    # Without a replica (TEST_CLUSTER=1 has one): with one, each write asks the primary for its
    # Commit-LSN, one more statement on the read side than the reads counted below.
    settings = settings.model_copy(update={"replica_database_url": None})
    async with running_app(settings) as (app, client):
        sent: Counter[tuple[str, str, str]] = Counter()

        async def call(method: str, url: str, route: str, **kwargs: Any) -> httpx.Response:
            response = await client.request(method, url, **kwargs)
            sent[(method, route, str(response.status_code))] += 1
            return response

        authors, books = f"{API}/authors", f"{API}/books"
        a1 = (await call("POST", authors, authors, json={"name": "Ursula"})).json()
        a2 = (await call("POST", authors, authors, json={"name": "Octavia"})).json()
        keyed = {"Idempotency-Key": "k-1"}
        first = await call("POST", authors, authors, json={"name": "Iain"}, headers=keyed)
        again = await call("POST", authors, authors, json={"name": "Iain"}, headers=keyed)
        assert again.headers["Idempotent-Replayed"] == "true"
        ids = [a1["id"], a2["id"], first.json()["id"]]
        book_ids = []
        for n in range(3):
            body = {"title": f"Book {n}", "author_ids": [a1["id"], a2["id"]]}
            book_ids.append((await call("POST", books, books, json=body)).json()["id"])
        ids += book_ids

        one = f"{books}/{{book_id}}"
        for book_id in book_ids:
            assert (await call("GET", f"{books}/{book_id}", one)).status_code == 200
        current = {"If-None-Match": '"1"'}
        for _ in range(2):
            cached = await call("GET", f"{books}/{book_ids[0]}", one, headers=current)
            assert cached.status_code == 304
        url = f"{books}/{book_ids[0]}"
        stale = await call("PATCH", url, one, json={"title": "x"}, headers={"If-Match": '"7"'})
        assert stale.status_code == 412
        assert (await call("PATCH", url, one, json={"title": "x"})).status_code == 428
        changed = await call("PATCH", url, one, json={"title": "x"}, headers={"If-Match": '"1"'})
        assert changed.status_code == 200
        same = await call("PATCH", url, one, json={"title": "x"}, headers={"If-Match": '"2"'})
        assert same.status_code == 200
        assert same.headers["ETag"] == '"2"'  # nothing changed: not an update
        gone = await call("DELETE", f"{books}/{book_ids[1]}", one, headers={"If-Match": '"1"'})
        assert gone.status_code == 204
        renamed = await call(
            "PATCH",
            f"{authors}/{a1['id']}",
            f"{authors}/{{author_id}}",
            json={"name": "Ursula K. Le Guin"},
            headers={"If-Match": '"1"'},
        )
        assert renamed.status_code == 200
        await call("GET", f"{books}?limit=5", books)
        await call("GET", f"{books}/{uuid.uuid4()}", one)
        ids.append(str(uuid.uuid4()))
        await call("GET", f"{books}/not-an-id", one)
        await call("GET", f"{API}/authors/{a2['id']}/books", f"{authors}/{{author_id}}/books")
        await call("GET", f"{API}/no/such/route/{a1['id']}", "")

        samples = await scrape(client)
        templates = {c.path for c in iter_route_contexts(app.routes)}

    assert request_counts(samples) == sent
    routes = {
        labels["http_route"] for labels, _ in samples["http_server_request_duration_seconds_count"]
    }
    assert routes <= templates | {""}, routes - templates
    for name, series in samples.items():
        for labels, _ in series:
            for label, got in labels.items():
                if name == "library_build_info":
                    continue
                assert not _UUID.search(got), (name, label, got)
                assert not any(i in got for i in ids), (name, label, got)

    def writes(resource: str, operation: str) -> float:
        return value(
            samples, "library_catalog_writes_total", resource=resource, operation=operation
        )

    assert (writes("authors", "created"), writes("authors", "updated")) == (3, 1)
    assert writes("authors", "deleted") == 0
    assert (writes("books", "created"), writes("books", "updated")) == (3, 1)
    assert writes("books", "deleted") == 1
    assert value(samples, "library_idempotent_replays_total", resource="authors") == 1
    assert value(samples, "library_idempotent_replays_total", resource="books") == 0
    for code, count in (("304", 2), ("412", 1), ("428", 1), ("429", 0)):
        answered = value(samples, "library_http_responses_total", http_response_status_code=code)
        assert answered == count, code

    # Every read is one statement on the read pool (an author's books two: the author must
    # exist): 3 books, 2 cached copies, a page, an unknown book, an author's books.
    reads = 3 + 2 + 1 + 1 + 2
    read_statements = sum(
        v
        for labels, v in samples["db_client_operation_duration_seconds_count"]
        if labels["db_client_connection_pool_name"] == "read"
    )
    assert read_statements == reads
    assert (
        value(
            samples,
            "db_client_operation_duration_seconds_count",
            db_client_connection_pool_name="write",
            db_operation_name="INSERT",
        )
        > 0
    )
    assert value(samples, "library_build_info", version=package_version()) == 1
    [(build, _)] = samples["library_build_info"]
    assert build["commit"]


async def test_pool_gauges_show_connections_in_use_and_requests_waiting(
    settings: Settings, engine: AsyncEngine
) -> None:
    one_connection = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_read_pool_size": 3}
    )
    async with running_app(one_connection) as (_, client):
        author = await create_author(client)
        book = await create_book(client, "Locked", [author["id"]])
        url = f"{API}/books/{book['id']}"
        idle = await scrape(client)
        pool = "db_client_connection_pool_name"
        assert value(idle, "db_client_connections_max", **{pool: "write"}) == 1
        assert value(idle, "db_client_connections_max", **{pool: "read"}) == 3
        assert value(idle, "db_client_connections_usage", state="used", **{pool: "write"}) == 0
        assert value(idle, "db_client_connections_usage", state="idle", **{pool: "write"}) == 1

        async with engine.connect() as blocker:
            await blocker.execute(text("BEGIN"))
            await blocker.execute(
                text("SELECT 1 FROM books WHERE id = :id FOR UPDATE"), {"id": book["id"]}
            )
            patches = [
                asyncio.create_task(
                    client.patch(url, json={"title": "New"}, headers={"If-Match": "*"})
                )
                for _ in range(2)
            ]
            busy: Samples = {}
            for _ in range(100):  # until one PATCH holds the connection and one waits for it
                busy = await scrape(client)
                pending = value(busy, "db_client_connections_pending_requests", **{pool: "write"})
                if pending == 1:
                    break
                await asyncio.sleep(0.05)
            await blocker.rollback()
        assert value(busy, "db_client_connections_usage", state="used", **{pool: "write"}) == 1
        assert value(busy, "db_client_connections_usage", state="idle", **{pool: "write"}) == 0
        assert value(busy, "db_client_connections_pending_requests", **{pool: "write"}) == 1
        assert {(await p).status_code for p in patches} == {200}
        after = await scrape(client)
        assert value(after, "db_client_connections_pending_requests", **{pool: "write"}) == 0
        assert value(after, "db_client_connections_usage", state="used", **{pool: "write"}) == 0


async def test_a_metrics_port_serves_them_off_the_public_api(settings: Settings) -> None:
    own_port = settings.model_copy(update={"metrics_port": 0, "metrics_host": "127.0.0.1"})
    async with running_app(own_port) as (app, client):
        assert (await client.get(f"{API}/books")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404
        port = app.state.container.observability().metrics_port
        assert port

        def fetch(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, ""

        status, body = await asyncio.to_thread(fetch, "/metrics")
        assert status == 200
        counts = request_counts(parse(body))
        assert counts[("GET", f"{API}/books", "200")] == 1
        assert counts[("GET", "", "404")] == 1  # the public /metrics is no route
        assert (await asyncio.to_thread(fetch, "/other"))[0] == 404
