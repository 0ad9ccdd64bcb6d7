"""LIBRARY_EVENTS_OUTBOX_ENABLED=false, the switch `make bench-outbox` measures the outbox with:
development only, and then really no event (docs/events.md "What the outbox costs")."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import bearer
from tests.integration.helpers import API, create_author, create_book

pytestmark = pytest.mark.usefixtures("clean_database")


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_outbox_is_never_off_outside_development(settings: Settings, environment: str) -> None:
    with pytest.raises(ValidationError, match="only with LIBRARY_ENVIRONMENT=development"):
        Settings(
            **{**settings.model_dump(), "environment": environment, "events_outbox_enabled": False}
        )


async def test_without_the_outbox_writes_record_no_event_and_nothing_is_relayed(
    settings: Settings, engine: AsyncEngine
) -> None:
    off = Settings(
        **{**settings.model_dump(), "environment": "development", "events_outbox_enabled": False}
    )
    assert off.events_relay_enabled is False  # nothing to deliver
    container = RootContainer()
    container.settings.override(off)
    app = create_app(container=container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=bearer()
        ) as client,
    ):
        author = await create_author(client, "Octavia E. Butler")
        book = await create_book(client, "Kindred", [author["id"]])
        assert book["authors"][0]["name"] == "Octavia E. Butler"
        response = await client.get(f"{API}/books/{book['id']}")
        assert response.status_code == 200
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM events")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM books")) == 1
