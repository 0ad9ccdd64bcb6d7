"""The public change feed: GET /api/v1/changes (README "Guarantees", docs/events.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.persistence.relay import EventNotifier, OutboxRelay
from tests.auth import bearer
from tests.integration.helpers import (
    API,
    assert_problem,
    create_author,
    create_book,
    relay_caught_up,
)

pytestmark = pytest.mark.usefixtures("clean_database")
FEED = f"{API}/changes"


async def follow(
    client: httpx.AsyncClient, cursor: str | None = None, *, expect: int, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """The next ``expect`` events after ``cursor``, following next_cursor page by page, then
    a check that nothing more is there.

    Long polls wait for events still held back: the feed shows an event once no older
    transaction of the whole server is running, and tests on a shared server see others'.
    """
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while True:
        wait = 5 if len(seen) < expect else 0
        query = {**params, "wait": wait, **({"cursor": cursor} if cursor else {})}
        response = await client.get(FEED, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["next_cursor"]  # never null
        if not page["items"]:
            assert cursor is None or page["next_cursor"] == cursor  # nothing new: same place
            if len(seen) >= expect:
                return seen, page["next_cursor"]
            assert time.monotonic() < deadline, f"only {len(seen)} of {expect} events came"
        seen.extend(page["items"])
        cursor = page["next_cursor"]


async def test_a_reader_following_cursors_sees_every_event_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    empty = await client.get(FEED)
    assert empty.json()["items"] == []
    assert empty.json()["next_cursor"]
    author = await create_author(client, "N. K. Jemisin")
    books = [await create_book(client, f"Book {n}", [author["id"]]) for n in range(5)]

    seen, cursor = await follow(client, expect=6, limit=2)
    assert [(e["type"], e["resource_id"]) for e in seen] == [
        ("author.created", author["id"]),
        *[("book.created", b["id"]) for b in books],
    ]
    assert len({e["id"] for e in seen}) == len(seen)
    assert seen[0]["data"]["name"] == "N. K. Jemisin"
    assert seen[0]["occurred_at"].endswith("Z")
    # Polling again from the last cursor: only what came since.
    more = await create_book(client, "Book 6", [author["id"]])
    later, _ = await follow(client, cursor, expect=1)
    assert [e["resource_id"] for e in later] == [more["id"]]


async def test_resource_id_narrows_the_feed_to_one_resource(client: httpx.AsyncClient) -> None:
    author = await create_author(client)
    book = await create_book(client, "Earthsea", [author["id"]])
    url = f"{API}/authors/{author['id']}"
    await client.patch(url, json={"bio": "Wrote Earthsea."}, headers={"If-Match": '"1"'})
    await create_book(client, "Other", [author["id"]])
    seen, _ = await follow(client, expect=2, resource_id=author["id"])
    assert [(e["type"], e["version"]) for e in seen] == [
        ("author.created", 1),
        ("author.updated", 2),
    ]
    assert [e["type"] for e in (await follow(client, expect=1, resource_id=book["id"]))[0]] == [
        "book.created"
    ]


async def test_start_latest_begins_from_now(client: httpx.AsyncClient) -> None:
    author = await create_author(client)
    await follow(client, expect=1)  # the author's event is in the feed now (or it would follow)
    response = await client.get(FEED, params={"start": "latest"})
    assert response.status_code == 200
    assert response.json()["items"] == []
    cursor = response.json()["next_cursor"]
    book = await create_book(client, "After", [author["id"]])
    seen, _ = await follow(client, cursor, expect=1)
    assert [e["resource_id"] for e in seen] == [book["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "bm90LW91cnM"},  # base64 of not-ours
        {"cursor": "!!!"},
        {"limit": "0"},
        {"limit": "101"},
        {"wait": "31"},
        {"wait": "1.5"},
        {"resource_id": "not-a-uuid"},
        {"start": "earliest"},
        {"start": "latest", "cursor": "WyJjaGFuZ2VzIixbMCwwXV0"},
    ],
)
async def test_bad_parameters_are_422_problems(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert_problem(await client.get(FEED, params=params), 422)


async def test_a_cursor_of_another_list_is_422(client: httpx.AsyncClient) -> None:
    for n in range(2):
        await create_author(client, f"Author {n}")
    authors_cursor = (await client.get(f"{API}/authors", params={"limit": 1})).json()["next_cursor"]
    assert_problem(await client.get(FEED, params={"cursor": authors_cursor}), 422)


async def test_a_cursor_before_events_retention_deleted_is_410_not_a_silent_gap(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    authors = [await create_author(client, f"Author {n}") for n in range(3)]
    await follow(client, expect=3)  # all three are final
    cursors: list[str] = []  # after the first, the second, the third event
    for _ in authors:
        after = {"cursor": cursors[-1]} if cursors else {}
        cursors.append(
            (await client.get(FEED, params={"limit": "1", **after})).json()["next_cursor"]
        )
    # The first two events fall out of this test's retention (5 days) and are pruned: younger
    # than the app's own (30 days), they are left to this test by the app's relay.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE events SET occurred_at = now() - interval '10 days' "
                "WHERE resource_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": [uuid.UUID(a["id"]) for a in authors[:2]]},
        )
    await relay_caught_up(engine)  # retention keeps what a subscriber has still to handle
    assert await OutboxRelay(engine, [], EventNotifier(), retention_days=5).prune() == 2

    # A reader after the first event would never see the second: refused, not a gap.
    extras: list[dict[str, str]] = [{}, {"wait": "1"}, {"resource_id": authors[1]["id"]}]
    for extra in extras:
        gone = await client.get(FEED, params={"cursor": cursors[0], **extra})
        body = assert_problem(gone, 410, "cursor-expired")
        assert "start=latest" in body["detail"]
    # After the last event deleted, nothing was missed; without a cursor, the oldest kept.
    later = (await client.get(FEED, params={"cursor": cursors[1]})).json()["items"]
    assert [e["resource_id"] for e in later] == [authors[2]["id"]]
    first = (await client.get(FEED)).json()["items"]
    assert [e["resource_id"] for e in first] == [authors[2]["id"]]


async def test_the_actor_is_shown_only_to_admins(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/authors", json={"name": "Le Guin"}, headers=bearer(sub="alice"))
    admin = (await client.get(FEED, params={"wait": 10})).json()["items"][0]
    assert admin["actor"] == "alice"
    reader = (await client.get(FEED, headers=bearer("catalog:read catalog:write"))).json()
    assert "actor" not in reader["items"][0]
    assert reader["items"][0]["request_id"]


async def test_a_long_poll_answers_when_an_event_arrives_or_empty_after_the_wait(
    client: httpx.AsyncClient,
) -> None:
    cursor = (await client.get(FEED, params={"start": "latest"})).json()["next_cursor"]
    started = time.monotonic()
    empty = await client.get(FEED, params={"cursor": cursor, "wait": 1})
    assert empty.json() == {"items": [], "next_cursor": cursor}
    assert time.monotonic() - started >= 1

    async def write_soon() -> None:
        await asyncio.sleep(0.5)
        await create_author(client, "Arrives")

    started = time.monotonic()
    writer = asyncio.create_task(write_soon())
    answer = await client.get(FEED, params={"cursor": cursor, "wait": 20})
    await writer
    assert [e["data"]["name"] for e in answer.json()["items"]] == ["Arrives"]
    assert time.monotonic() - started < 10  # long before the wait is over


async def test_an_event_is_shown_only_once_no_earlier_transaction_can_still_commit(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Ids are not commit order: a transaction that began writing first can commit last.

    A holds an older transaction id and commits after B. A reader must not be shown B before
    A is decided, or it would pass A's position and never see A's event.
    """
    cursor = (await client.get(FEED, params={"start": "latest"})).json()["next_cursor"]
    slow_id = uuid.uuid4()
    async with engine.connect() as slow:
        transaction = await slow.begin()
        await slow.execute(text("SELECT pg_current_xact_id()"))  # A's id is taken now
        await slow.execute(
            text(
                "INSERT INTO events (type, resource_id, version, occurred_at, data) "
                "VALUES ('author.created', :id, 1, now(), '{}')"
            ),
            {"id": slow_id},
        )
        fast = await create_author(client, "Committed first")  # B commits while A is open
        held = await client.get(FEED, params={"cursor": cursor})
        assert held.json()["items"] == []  # B is held back: A could still come before it
        await transaction.commit()
    seen, _ = await follow(client, cursor, expect=2)
    assert [e["resource_id"] for e in seen] == [str(slow_id), fast["id"]]


async def test_one_resources_events_follow_its_versions_under_concurrent_writes(
    client: httpx.AsyncClient,
) -> None:
    author = await create_author(client)
    url = f"{API}/authors/{author['id']}"

    async def revise(n: int) -> int:
        response = await client.patch(url, json={"bio": f"take {n}"}, headers={"If-Match": "*"})
        return response.status_code

    statuses = await asyncio.gather(*(revise(n) for n in range(20)))
    done = statuses.count(200)
    assert done >= 1
    assert set(statuses) <= {200, 409}
    seen, _ = await follow(client, expect=done + 1, resource_id=author["id"])
    assert [e["version"] for e in seen] == list(range(1, done + 2))
