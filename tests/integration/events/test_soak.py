"""The soak test of issue 13: 16 clients make 10,000 writes while the relay is killed 5 times.

Afterwards every committed write has exactly one event, the feed lists them all in order with
no duplicates, and every book's author names match the authors'. The relay runs in a process
of its own (``relay_worker``), killed with SIGKILL mid-delivery and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import Settings
from tests.integration.credit_copies import settled_credit_copies
from tests.integration.helpers import API, running_app, vacuum

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_database")]

CLIENTS = 16
WRITES = int(os.environ.get("LIBRARY_SOAK_WRITES", "10000"))
# What a write may be refused with, committing nothing: a conflict (409), or the database
# overloaded (503: a lock or pool wait timed out, as the relay's batches hold the books' rows
# of a renamed author); neither is acknowledged, so neither may have an event.
REFUSED = (409, 503)
# Authors the books credit. With a handful, every insert of a credit share-locks the same few
# author rows (the foreign key) from 16 transactions at once, and PostgreSQL 15 spends the run
# in its multixact cache (MultiXactOffsetSLRU waits, 3 writes a second): a catalog's hot spot,
# not the outbox's, so the soak spreads its books over a catalog's worth of authors.
AUTHORS = 200
KILLS = 5
# The whole soak, and the feed's catch-up without a new event, are bounded: a stalled relay or
# feed fails the test with what the database was doing, instead of hanging the run.
DEADLINE_SECONDS = 900
FEED_STALL_SECONDS = 60
VACUUM_EVERY_SECONDS = 5
_ACTIVITY = text(
    """
    SELECT application_name, state, wait_event_type, wait_event,
           round(extract(epoch FROM now() - xact_start)) AS xact_seconds, left(query, 120)
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
    ORDER BY xact_start NULLS LAST
    """
)


async def diagnosis(engine: AsyncEngine) -> str:
    """What the database's sessions are doing, and how far the relay has got."""
    async with engine.connect() as conn:
        activity = (await conn.execute(_ACTIVITY)).all()
        positions = (await conn.execute(text("SELECT * FROM relay_positions"))).all()
        backlog = (await conn.execute(text("SELECT count(*), max(xid) FROM events"))).one()
    lines = [f"events: {backlog[0]} (max xid {backlog[1]}); relay positions: {positions}"]
    lines += [" | ".join(str(v) for v in row) for row in activity]
    return "\n".join(lines)


drains: set[asyncio.Task[None]] = set()  # each ends at its relay's end (EOF)


async def drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def start_relay(database_url: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "LIBRARY_DATABASE_URL": database_url, "LIBRARY_ENVIRONMENT": "test"}
    env["LIBRARY_LOG_LEVEL"] = "WARNING"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.events.relay_worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert b"relay started" in await asyncio.wait_for(process.stdout.readline(), 30)
    # What it logs afterwards is read and dropped: a full pipe would block the relay mid-delivery.
    task = asyncio.create_task(drain(process.stdout))
    drains.add(task)
    task.add_done_callback(drains.discard)
    return process


async def stand_in_for_autovacuum(engine: AsyncEngine) -> None:
    """VACUUM the written tables every few seconds, as autovacuum would (until cancelled).

    On a server without autovacuum (the machine's PostgreSQL 15 here), every rename and retitle
    leaves a dead row version that nothing removes: within minutes each foreign-key check and
    book update walked tens of thousands of them (authors: 200 live rows, 20,000 dead), the
    writes and the relay's batches took seconds each, and a CI run hung here."""
    while True:
        await asyncio.sleep(VACUUM_EVERY_SECONDS)
        await vacuum(engine)


async def test_16_clients_10000_writes_the_relay_killed_5_times(
    settings: Settings, database_url: str, engine: AsyncEngine, autovacuum_off: bool
) -> None:
    quiet = settings.model_copy(update={"events_relay_enabled": False, "log_level": "WARNING"})
    acknowledged: list[tuple[str, str, int]] = []  # (type, resource id, version) of each 2xx
    rng = random.Random(13)
    relays = [await start_relay(database_url)]  # the one running is the last
    vacuumer = asyncio.create_task(stand_in_for_autovacuum(engine)) if autovacuum_off else None
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await soak(quiet, database_url, engine, acknowledged, rng, relays)
    except TimeoutError:
        pytest.fail(
            f"the soak did not end within {DEADLINE_SECONDS} s ({len(acknowledged)} writes "
            f"acknowledged):\n{await diagnosis(engine)}"
        )
    finally:
        if vacuumer is not None:
            vacuumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await vacuumer
        if relays[-1].returncode is None:
            relays[-1].send_signal(signal.SIGKILL)
            await relays[-1].wait()


async def soak(
    quiet: Settings,
    database_url: str,
    engine: AsyncEngine,
    acknowledged: list[tuple[str, str, int]],
    rng: random.Random,
    relays: list[asyncio.subprocess.Process],
) -> None:
    async with running_app(quiet) as (_, client):
        authors: list[dict[str, Any]] = []
        books: list[str] = []
        for n in range(AUTHORS):
            r = await client.post(f"{API}/authors", json={"name": f"Soak Author {n}"})
            authors.append(r.json())
            acknowledged.append(("author.created", r.json()["id"], 1))
        done = 0

        async def worker(k: int) -> None:
            nonlocal done
            while done < WRITES:
                done += 1
                roll = rng.random()
                if roll < 0.5 or not books:
                    picked = rng.sample(authors, 2)
                    r = await client.post(
                        f"{API}/books",
                        json={"title": f"Soak {k}-{done}", "author_ids": [a["id"] for a in picked]},
                    )
                    assert r.status_code in (201, *REFUSED), r.text
                    if r.status_code == 201:
                        books.append(r.json()["id"])
                        acknowledged.append(("book.created", r.json()["id"], 1))
                elif roll < 0.8:
                    author = rng.choice(authors)
                    r = await client.patch(
                        f"{API}/authors/{author['id']}",
                        json={"name": f"Soak Author {rng.randrange(10**9)}"},
                        headers={"If-Match": "*"},
                    )
                    assert r.status_code in (200, *REFUSED), r.text
                    if r.status_code == 200:
                        acknowledged.append(("author.updated", author["id"], r.json()["version"]))
                else:
                    book = rng.choice(books)
                    r = await client.patch(
                        f"{API}/books/{book}",
                        json={"title": f"Retitled {rng.randrange(10**9)}"},
                        headers={"If-Match": "*"},
                    )
                    assert r.status_code in (200, *REFUSED), r.text
                    if r.status_code == 200:
                        acknowledged.append(("book.updated", book, r.json()["version"]))

        async def killer() -> None:
            for n in range(1, KILLS + 1):
                # Spread over the run (polling a counter the writers share).
                while done < n * WRITES // (KILLS + 1):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0, 0.5))
                relays[-1].send_signal(signal.SIGKILL)  # mid-delivery: writes never stop
                await relays[-1].wait()
                relays.append(await start_relay(database_url))

        started = time.monotonic()
        await asyncio.gather(killer(), *(worker(k) for k in range(CLIENTS)))
        elapsed = time.monotonic() - started

        # Every acknowledged write has exactly one event (and no event lacks its write).
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT type, resource_id::text, version FROM events"))
            ).all()
        recorded = sorted(tuple(r) for r in rows)
        assert recorded == sorted(acknowledged)
        assert len(acknowledged) > WRITES // 2  # a soak of writes, not of refusals

        # The feed lists them all, in order, without duplicates.
        seen: list[dict[str, Any]] = []
        cursor = None
        progressed = time.monotonic()
        while len(seen) < len(recorded):
            if time.monotonic() - progressed > FEED_STALL_SECONDS:
                pytest.fail(
                    f"the feed listed {len(seen)} of {len(recorded)} events and nothing more "
                    f"for {FEED_STALL_SECONDS} s:\n{await diagnosis(engine)}"
                )
            params: dict[str, Any] = {"limit": 100, "wait": 5}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(f"{API}/changes", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if page["items"]:
                progressed = time.monotonic()
        assert len({e["id"] for e in seen}) == len(seen) == len(recorded)
        versions: dict[str, int] = {}
        for event in seen:
            assert event["version"] > versions.get(event["resource_id"], 0)
            versions[event["resource_id"]] = event["version"]

    # The last relay catches up: every book's author names match the authors'.
    copies = await settled_credit_copies(engine)
    assert copies.stale == []
    print(f"soak: {len(acknowledged)} writes in {elapsed:.1f} s, relay killed {KILLS} times")
