"""The cap on concurrent searches: the others wait, then get 503; other requests never wait."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from shared.web.admission import AdmissionMiddleware
from shared.web.rate_limit import SearchCap


async def test_a_burst_of_searches_cannot_take_every_slot() -> None:
    release = asyncio.Event()
    running = 0
    most = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if b"q=tolkien" in scope["query_string"]:  # the held searches
            await release.wait()
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    capped = AdmissionMiddleware(app, max_body_bytes=1024, search_cap=SearchCap(2, 0.3))
    transport = httpx.ASGITransport(app=capped)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        searches = [asyncio.create_task(client.get("/api/v1/books?q=tolkien")) for _ in range(2)]
        await asyncio.sleep(0.05)
        # Two searches hold both slots: a third waits, then is refused; a plain list is not.
        third = await client.get("/api/v1/authors", params={"q": "le guin"})
        assert third.status_code == 503
        assert third.headers["content-type"] == "application/problem+json"
        assert third.headers["retry-after"]
        assert (await client.get("/api/v1/books?q=&limit=5")).status_code == 200
        assert (await client.get("/api/v1/books")).status_code == 200
        release.set()
        assert [r.status_code for r in await asyncio.gather(*searches)] == [200, 200]
        assert (await client.get("/api/v1/books?q=again")).status_code == 200
