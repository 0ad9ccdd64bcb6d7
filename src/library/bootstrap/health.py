"""Liveness and readiness: is the process up, and are the database and its schema ready."""

import asyncio
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.kernel.errors import ServiceUnavailableError
from shared.persistence.db import current_revisions
from shared.persistence.reads import ReadPool
from shared.settings import Settings
from shared.web.problems import domain_problem, problem_responses

READY_TIMEOUT_SECONDS = 2.0


class DatabaseState(BaseModel):
    """One database the process uses, as /health/ready reports it."""

    name: Literal["primary", "replica"]
    role: Literal["primary", "replica"]
    path: Literal["direct", "pooler"] = Field(
        description="direct: PostgreSQL itself; pooler: through PgBouncer (transaction mode)"
    )
    state: Literal["up", "down", "lagging"] = Field(
        description="lagging: a replica behind by more than LIBRARY_REPLICA_MAX_LAG_MS"
    )
    lag_ms: float | None = Field(description="A replica's lag in milliseconds (null: unknown)")


class Readiness(BaseModel):
    """The answer of a ready process."""

    status: Literal["ready"]
    revision: list[str]
    databases: list[DatabaseState]


class NotReadyError(ServiceUnavailableError):
    """The service cannot serve requests yet (database down, or schema not migrated)."""

    code = "not-ready"
    title = "Service not ready"

    def __init__(self, detail: str, databases: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.databases = databases or []


class HealthCheck:
    """Compares the database's Alembic revision with the head of the migrations shipped with us."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, read_pool: ReadPool | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._read_pool = read_pool

    def databases(self, primary_up: bool) -> list[dict[str, object]]:
        """Each database the process uses: its role, the path to it, its state and lag."""
        pooled = self._settings.db_pooler != "none"
        found: list[dict[str, object]] = [
            {
                "name": "primary",
                "role": "primary",
                "path": "pooler" if pooled else "direct",
                "state": "up" if primary_up else "down",
                "lag_ms": None,
            }
        ]
        if self._settings.replica_database_url is not None:
            tracker = None if self._read_pool is None else self._read_pool.tracker
            replica = {"state": "down", "lag_ms": None} if tracker is None else tracker.describe()
            found.append({"name": "replica", "role": "replica", "path": "direct", **replica})
        return found

    @cached_property
    def expected_heads(self) -> set[str]:
        config = Config(str(Path(self._settings.alembic_config)))
        return set(ScriptDirectory.from_config(config).get_heads())

    async def check(self) -> dict[str, object]:
        """The database revision when ready; NotReadyError otherwise."""
        try:
            expected = self.expected_heads
        except Exception as exc:  # a missing or broken alembic.ini: we cannot tell, so not ready
            raise NotReadyError(
                f"The migrations cannot be read from {self._settings.alembic_config!r} "
                f"({type(exc).__name__}); set LIBRARY_ALEMBIC_CONFIG.",
                self.databases(primary_up=False),
            ) from None
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                revisions = await current_revisions(self._engine)
        except Exception as exc:  # whatever the failure, the database did not answer
            raise NotReadyError(
                f"The database does not answer ({type(exc).__name__}).",
                self.databases(primary_up=False),
            ) from None
        if revisions != expected:
            raise NotReadyError(
                f"The database schema is at {sorted(revisions) or 'no revision'}, expected "
                f"{sorted(expected)}: run the migrations (make migrate).",
                self.databases(primary_up=True),
            )
        # Ready or not depends on the primary only: a replica down or lagging is degraded
        # (reads go to the primary), not unready.
        return {
            "status": "ready",
            "revision": sorted(revisions),
            "databases": self.databases(primary_up=True),
        }


def create_router(health: Callable[[], HealthCheck]) -> APIRouter:
    """``/health/live`` and ``/health/ready`` (the check is built on first use: it needs the
    engine, which the lifespan creates)."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        """200 while the process runs."""
        return {"status": "live"}

    @router.get("/ready", responses=problem_responses(503), response_model=Readiness)
    async def ready(request: Request) -> Any:
        """200 when the database answers and its schema is at the migrations' head; 503 otherwise.

        The body lists each database the process uses (``databases``): its name and role
        (primary, replica), the path to it (direct, pooler), its state (up, down, lagging) and
        the replica's lag in milliseconds. A replica down or lagging is not a 503: reads then
        go to the primary."""
        try:
            return await health().check()
        except NotReadyError as exc:
            return domain_problem(request, exc, {"databases": exc.databases})

    return router
