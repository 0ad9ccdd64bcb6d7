"""Publishing to NATS (LIBRARY_EVENTS_NATS_URL), against the real server on 127.0.0.1:4222."""

from __future__ import annotations

import asyncio
import os

import nats
import orjson
import pytest
from nats.aio.msg import Msg

from shared.settings import Settings
from tests.integration.helpers import API, running_app

pytestmark = pytest.mark.usefixtures("clean_database")
NATS_URL = os.environ.get("LIBRARY_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def test_every_event_is_published_to_nats_with_its_id(settings: Settings) -> None:
    broker = await nats.connect(NATS_URL, connect_timeout=5)
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        await received.put(msg)

    await broker.subscribe("library.events.>", cb=on_message)
    try:
        configured = settings.model_copy(update={"events_nats_url": NATS_URL})
        async with running_app(configured) as (_, client):
            author = (await client.post(f"{API}/authors", json={"name": "Published"})).json()
            url = f"{API}/authors/{author['id']}"
            await client.patch(url, json={"bio": "On the wire."}, headers={"If-Match": '"1"'})
            mine: list[Msg] = []
            async with asyncio.timeout(20):
                while len(mine) < 2:
                    msg = await received.get()
                    if orjson.loads(msg.data)["resource_id"] == author["id"]:
                        mine.append(msg)
            feed = (await client.get(f"{API}/changes", params={"wait": 10})).json()["items"]
    finally:
        await broker.close()
    assert [m.subject for m in mine] == [
        "library.events.author.created",
        "library.events.author.updated",
    ]
    bodies = [orjson.loads(m.data) for m in mine]
    assert [(b["type"], b["version"]) for b in bodies] == [
        ("author.created", 1),
        ("author.updated", 2),
    ]
    assert bodies[1]["data"] == {"bio": "On the wire.", "updated_at": bodies[1]["occurred_at"]}
    # The same event ids as the change feed's: a JetStream stream deduplicates redeliveries.
    assert [m.headers["Nats-Msg-Id"] for m in mine if m.headers] == [e["id"] for e in feed]
