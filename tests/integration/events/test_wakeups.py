"""Who wakes whom when events are written (docs/events.md, "Waking up").

A write's transaction sends no NOTIFY: PostgreSQL serialises the commits of notifying
transactions through their WAL flush, so concurrent writes committed one flush at a time. The
writing process wakes its own relay and long polls in process; other processes hear the
relay's NOTIFY once it has delivered the batch.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.persistence.relay import CHANNEL
from shared.settings import Settings
from tests.integration.helpers import create_author, running_app

pytestmark = pytest.mark.usefixtures("clean_database")


async def pids_of(listener: asyncpg.Connection, application_name: str) -> set[int]:
    """The server pids of the sessions whose application_name is LIKE this pattern."""
    rows = await listener.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1", application_name
    )
    return {row["pid"] for row in rows}


async def test_a_write_sends_no_notify_and_the_relay_wakes_the_other_processes(
    settings: Settings, database_url: str
) -> None:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    notifiers: list[int] = []  # the server pids that sent NOTIFY library_events
    listener = await asyncpg.connect(dsn)  # another process's relay, or a long poll's
    try:
        await listener.add_listener(CHANNEL, lambda _c, pid, _ch, _p: notifiers.append(pid))
        # The sessions are told apart by name (another test's process may notify too).
        quiet = settings.model_copy(
            update={"events_relay_enabled": False, "db_application_name": "wakeups-quiet"}
        )
        async with running_app(quiet) as (_, client):
            await create_author(client, "Written quietly")
            await asyncio.sleep(1)
            writers = await pids_of(listener, "wakeups-quiet")
        assert writers  # the write's session was seen
        assert not set(notifiers) & writers  # and it notified no one

        relaying = settings.model_copy(update={"db_application_name": "wakeups"})
        async with running_app(relaying) as (_, client):
            await create_author(client, "Announced")
            deadline = time.monotonic() + 10
            relays: set[int] = set()
            while not set(notifiers) & relays and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                # This app's relay, or another app's of the test session: the relays share
                # the subscribers' work, and whichever delivered the event announces it.
                relays = await pids_of(listener, "%-relay")
            assert set(notifiers) & relays  # a relay announced its delivery
    finally:
        await listener.close()
