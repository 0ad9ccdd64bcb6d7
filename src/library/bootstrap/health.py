"""Liveness and readiness: is the process up, and are the database and its schema ready."""

import asyncio
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.kernel.errors import ServiceUnavailableError
from shared.persistence.db import current_revisions
from shared.settings import Settings
from shared.web.problems import problem_responses

READY_TIMEOUT_SECONDS = 2.0


class NotReadyError(ServiceUnavailableError):
    """The service cannot serve requests yet (database down, or schema not migrated)."""

    code = "not-ready"
    title = "Service not ready"


class HealthCheck:
    """Compares the database's Alembic revision with the head of the migrations shipped with us."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

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
                f"({type(exc).__name__}); set LIBRARY_ALEMBIC_CONFIG."
            ) from None
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                revisions = await current_revisions(self._engine)
        except Exception as exc:  # whatever the failure, the database did not answer
            raise NotReadyError(f"The database does not answer ({type(exc).__name__}).") from None
        if revisions != expected:
            raise NotReadyError(
                f"The database schema is at {sorted(revisions) or 'no revision'}, expected "
                f"{sorted(expected)}: run the migrations (make migrate)."
            )
        return {"status": "ready", "revision": sorted(revisions)}


def create_router(health: Callable[[], HealthCheck]) -> APIRouter:
    """``/health/live`` and ``/health/ready`` (the check is built on first use: it needs the
    engine, which the lifespan creates)."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        """200 while the process runs."""
        return {"status": "live"}

    @router.get("/ready", responses=problem_responses(503))
    async def ready() -> dict[str, object]:
        """200 when the database answers and its schema is at the migrations' head; 503 otherwise."""  # noqa: E501
        return await health().check()

    return router
