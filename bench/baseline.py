"""The baseline: a minimal Starlette app on an asyncpg pool, replaying the app's captured SQL.

For each read it looks up the request (path and query) in the capture and sends the very
statements the app sent, in order, on one pooled connection, without a transaction (a read needs
none), and serialises every row it got with orjson. For POST it fills the captured template with
the request's values (a fresh id, the body's title, ISBN, authors, the current time) and sends the
statements the app sent inside its transaction, in one transaction. This is the practical ceiling
for Python on this SQL: no validation, no ORM, no layers.

Run: ``BENCH_REPLAY=bench/results/<run>/replay.json python -m bench.baseline`` (see bench.run).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.values import load

Step = tuple[str, Any, bool]  # sql, parameters (or POST roles), executemany


def _read_plans(replay: dict[str, Any]) -> dict[str, list[Step]]:
    plans: dict[str, list[Step]] = {}
    for scenario in replay.values():
        if scenario["method"] != "GET":
            continue
        for request in scenario["requests"]:
            plans[request["path"]] = [
                (s["sql"], load(s["params"]), s["many"]) for s in request["statements"]
            ]
    return plans


def _post_plan(replay: dict[str, Any]) -> list[tuple[bool, list[Step]]]:
    """The POST statements in order, grouped by the app's committed transactions.

    Statements the app ran in a transaction it rolled back (reads) run without one here.
    """
    groups: list[tuple[bool, list[Step]]] = []
    last: object = object()
    for scenario in replay.values():
        if scenario["method"] != "POST":
            continue
        for s in scenario["requests"][0]["statements"]:
            step = (s["sql"], s["params"], s["many"])
            group = s["transaction"] if s["committed"] else None
            if groups and group is not None and group == last:
                groups[-1][1].append(step)
            else:
                groups.append((group is not None, [step]))
            last = group
    return groups


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, list):
        return [_fill(t, values) for t in template]
    if isinstance(template, dict) and "role" in template:
        return values[template["role"]]
    return load(template)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release a connection as it is (an open transaction is still rolled back by asyncpg)."""


async def _run(conn: asyncpg.Connection, sql: str, params: Any, many: bool) -> list[Any]:
    if many:
        await conn.executemany(sql, params)
        return []
    return [dict(row) for row in await conn.fetch(sql, *params)]


def create_app(replay_path: Path, min_size: int, max_size: int) -> Starlette:
    """The baseline app serving the requests captured in ``replay_path``."""
    replay = orjson.loads(replay_path.read_bytes())
    reads = _read_plans(replay)
    post = _post_plan(replay)
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(
            os.environ["BENCH_DSN"],
            min_size=min_size,
            max_size=max_size,
            # The app's session settings that matter here (its statement timeout).
            server_settings={
                "application_name": "bench-baseline",
                "statement_timeout": os.environ.get("BENCH_STATEMENT_TIMEOUT_MS", "15000"),
                "timezone": "UTC",
            },
            # No session state to reset on release: skip asyncpg's default reset query (a round
            # trip per request the app does not pay either).
            reset=_keep_session,
        )
        try:
            yield
        finally:
            await pool.close()

    async def read(request: Request) -> Response:
        scope = request.scope
        key = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        steps = reads.get(key)
        if steps is None or pool is None:
            return Response(status_code=404)
        async with pool.acquire() as conn:
            rows = [await _run(conn, sql, params, many) for sql, params, many in steps]
        return Response(orjson.dumps(rows, default=str), media_type="application/json")

    async def create(request: Request) -> Response:
        body = orjson.loads(await request.body())
        values: dict[str, Any] = {
            "new_id": uuid.uuid4(),
            "now": datetime.now(UTC),
            "title": body["title"],
            "isbn": body["isbn"],
            "year": body["publication_year"],
            "language": body["language"],
        }
        for index, author_id in enumerate(body["author_ids"]):
            values[f"author:{index}"] = uuid.UUID(author_id)
        if pool is None:
            return Response(status_code=503)
        rows: list[Any] = []
        try:
            async with pool.acquire() as conn:
                for in_transaction, steps in post:
                    if in_transaction:
                        async with conn.transaction():
                            for sql, params, many in steps:
                                rows.append(await _run(conn, sql, _fill(params, values), many))
                    else:
                        for sql, params, many in steps:
                            rows.append(await _run(conn, sql, _fill(params, values), many))
        except asyncpg.UniqueViolationError:
            return Response(status_code=409)
        return Response(
            orjson.dumps({"id": values["new_id"], "rows": rows}, default=str),
            status_code=201,
            media_type="application/json",
        )

    return Starlette(
        routes=[
            Route("/{path:path}", read, methods=["GET"]),
            Route("/{path:path}", create, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    """Serve the baseline like the app is served: uvicorn, uvloop, httptools, one worker."""
    app = create_app(
        Path(os.environ["BENCH_REPLAY"]),
        int(os.environ.get("BENCH_POOL_MIN", "10")),
        int(os.environ.get("BENCH_POOL_MAX", "15")),
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("BENCH_BASELINE_PORT", "8043")),
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
