"""The capture pass: serve each scenario's requests in-process and record the app's SQL.

A ``before_cursor_execute`` listener records every statement SQLAlchemy sends with its
parameters; a watcher of the units of work's own round trips (shared.persistence.driver:
BEGIN, a book's INSERT, COMMIT) records theirs and the transactions; the read pool's query
logger records the reads. The baseline and pgbench replay exactly these statements, so they
follow the app whenever its SQL changes: every run captures afresh.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.values import dump
from bench.workload import POST_TITLE_PREFIX, Scenario


@dataclass(slots=True)
class Statement:
    """One statement the app sent: text, parameters, and the transaction it ran in (if any)."""

    sql: str
    params: Any
    many: bool
    transaction: int | None


@dataclass(slots=True)
class Recorder:
    """Collects the app's statements and transactions: SQLAlchemy's statements, the units of
    work's own round trips, the read pool's statements."""

    statements: list[Statement] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    _open: int | None = None

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._execute)

    def driver(self, sql: str, args: Any) -> None:
        """A round trip a unit of work sent on asyncpg itself: BEGIN, COMMIT or a statement.

        Units of work begin and commit there (SQLAlchemy's own transaction events would say
        ROLLBACK: its session only closes a transaction the driver has committed); a unit of
        work that does not commit rolls back as its session closes, and its statements are
        not counted as committed (none was)."""
        if sql.startswith("BEGIN"):
            self._open = len(self.transactions)
            self.transactions.append("BEGIN")
        elif sql == "COMMIT":
            if self._open is not None:
                self.outcomes[self._open] = "COMMIT"
            self._open = None
            self.transactions.append("COMMIT")
        else:
            self.statements.append(Statement(sql, list(args), False, self._open))

    def read(self, record: Any) -> None:
        """A statement of the read pool (asyncpg's query logger): one round trip, no transaction."""
        self.statements.append(Statement(record.query, record.args, False, None))

    def reset(self) -> None:
        self.statements.clear()
        self.transactions.clear()
        self.outcomes.clear()

    def _execute(self, *args: Any) -> None:
        _conn, _cursor, statement, parameters, _context, executemany = args
        self.statements.append(Statement(statement, parameters, bool(executemany), self._open))


def capture_body(authors: tuple[str, ...]) -> dict[str, Any]:
    """The POST body of the capture request: values distinct enough to tell them apart."""
    return {
        "title": f"{POST_TITLE_PREFIX}capture",
        "author_ids": [authors[0], authors[1]],
        "isbn": isbn13("979000000000"),
        "publication_year": 1987,
        "language": "en",
    }


def isbn13(twelve: str) -> str:
    """``twelve`` digits followed by their ISBN-13 check digit."""
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(twelve))
    return twelve + str((10 - total % 10) % 10)


def post_roles(body: dict[str, Any], new_id: str, params: Any) -> Any:
    """Each parameter's role (``{"role": ...}``) or its constant value, for the POST template."""
    known: dict[Any, str] = {
        uuid.UUID(new_id): "new_id",
        body["title"]: "title",
        body["isbn"]: "isbn",
        body["language"]: "language",
    }
    for index, author_id in enumerate(body["author_ids"]):
        known[uuid.UUID(author_id)] = f"author:{index}"

    def role(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [role(v) for v in value]
        if isinstance(value, datetime):
            return {"role": "now"}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"role": "year"} if value == body["publication_year"] else value
        if isinstance(value, uuid.UUID | str) and value in known:
            return {"role": known[value]}
        return dump(value)

    return role(params)


async def capture(database_url: str, scenarios: list[Scenario]) -> dict[str, Any]:
    """Serve every request of every scenario once; return what the app sent to PostgreSQL."""
    os.environ["LIBRARY_DATABASE_URL"] = database_url
    os.environ.setdefault("LIBRARY_LOG_LEVEL", "WARNING")
    # Who may write changes no statement: the capture runs without tokens or rate limits
    # (both settings honoured in development only); the served app verifies tokens.
    os.environ["LIBRARY_ENVIRONMENT"] = "development"
    os.environ["LIBRARY_AUTH_DISABLED"] = "true"
    os.environ["LIBRARY_RATE_LIMIT_ENABLED"] = "false"
    # The outbox relay's statements (its start-up, its polls) belong to no request: without it
    # the capture holds each request's SQL only. The served app runs it, as production does.
    os.environ["LIBRARY_EVENTS_RELAY_ENABLED"] = "false"
    from library.bootstrap.app import create_app

    recorder = Recorder()
    recorder.install()
    app = create_app()
    out: dict[str, Any] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client,
    ):
        await app.state.container.read_pool().add_query_logger(recorder.read)
        app.state.container.write_observers().watchers.append(recorder.driver)
        for scenario in scenarios:
            requests = []
            for path in scenario.paths:
                body = capture_body(scenario.post_authors) if scenario.method == "POST" else None
                recorder.reset()
                response = await client.request(scenario.method, path, json=body)
                await asyncio.sleep(0.01)  # asyncpg calls its query loggers with call_soon
                if response.status_code >= 300:
                    raise RuntimeError(
                        f"{scenario.name}: {scenario.method} {path} answered "
                        f"{response.status_code}: {response.text[:300]}"
                    )
                if not recorder.statements:
                    # A query sent on the raw driver connection would bypass the listener, and
                    # the baseline would then be measured doing less than the app.
                    raise RuntimeError(
                        f"{scenario.name}: {path} sent no SQL the capture could see; "
                        "extend bench/capture.py to record it"
                    )
                entry: dict[str, Any] = {
                    "path": path,
                    "status": response.status_code,
                    "first_item_id": _first_item_id(response.json()),
                    "transactions": list(recorder.transactions),
                }
                if body is not None:
                    new_id = response.json()["id"]
                    entry["body"] = body
                    entry["statements"] = [
                        {
                            "sql": s.sql,
                            "params": post_roles(body, new_id, s.params),
                            "many": s.many,
                            "transaction": s.transaction,
                            "committed": _committed(recorder, s),
                        }
                        for s in recorder.statements
                    ]
                else:
                    entry["statements"] = [
                        {
                            "sql": s.sql,
                            "params": dump(s.params),
                            "many": s.many,
                            "transaction": s.transaction,
                            "committed": _committed(recorder, s),
                        }
                        for s in recorder.statements
                    ]
                requests.append(entry)
            out[scenario.name] = {"method": scenario.method, "requests": requests}
    return out


def _first_item_id(payload: Any) -> str | None:
    items = payload.get("items") if isinstance(payload, dict) else None
    return str(items[0]["id"]) if items else None


def _committed(recorder: Recorder, statement: Statement) -> bool:
    """Whether ``statement`` ran in a transaction that committed (a write's transaction)."""
    return (
        statement.transaction is not None
        and recorder.outcomes.get(statement.transaction) == "COMMIT"
    )
