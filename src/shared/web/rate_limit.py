"""Limits per client (rate, by ``limits``) and a cap on concurrent searches (applied by
``shared.web.admission``).

A client is the token's ``sub`` when the request carries a valid token, otherwise its address
(as the trusted proxies report it). The counters are the ``limits`` library's sliding-window
counters, in this process or, with ``LIBRARY_REDIS_URL``, in Redis (shared by every process).
A client over its limit gets 429 problem+json with ``Retry-After`` and the IETF
``RateLimit-Policy`` / ``RateLimit`` headers (draft-ietf-httpapi-ratelimit-headers).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import cast
from urllib.parse import parse_qs

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import SlidingWindowCounterSupport
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.types import Scope

from shared.web.problems import PROBLEM_TYPE_PREFIX
from shared.web.responses import json_bytes

log = structlog.stdlib.get_logger("library.limits")

# A limit of a client: the item, its counter's key, its amount and its window in seconds.
_Entry = tuple[RateLimitItem, str, int, int]
# The clients whose counters' keys are kept built (the dict is emptied when it reaches this).
_ENTRIES_KEPT = 10_000


class RateLimiter:
    """The limits of anonymous and authenticated clients, on one ``limits`` storage."""

    def __init__(
        self, *, anonymous: str, authenticated: str, redis_url: str | None, namespace: str
    ) -> None:
        self.policies: dict[str, list[RateLimitItem]] = {
            "anonymous": parse_many(anonymous),
            "authenticated": parse_many(authenticated),
        }
        self.backend = "redis" if redis_url else "memory"
        uri = f"async+{redis_url}" if redis_url else "async+memory://"
        self._storage = storage_from_string(uri, key_prefix=namespace)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        # What the strategy's ``hit`` does, minus building the counter's key on every request
        # (``key_for``: a quarter of a hit's cost, measured): the storage's own sliding-window
        # entry, under the key the strategy would use (its window stats find the same counter).
        self._acquire = cast(
            SlidingWindowCounterSupport, self._storage
        ).acquire_sliding_window_entry
        self._entries: dict[tuple[str, str], list[_Entry]] = {}

    async def refused(self, kind: str, client: str) -> tuple[RateLimitItem, float] | None:
        """None if ``client`` may go on; else the limit it hit and the seconds until it may.

        A storage that does not answer (Redis down) lets the request through: a broken counter
        is not a reason to refuse every client.
        """
        entries = self._entries.get((kind, client))
        if entries is None:
            if len(self._entries) >= _ENTRIES_KEPT:
                self._entries.clear()  # many clients: start again rather than grow
            entries = self._entries[kind, client] = [
                (item, item.key_for(kind, client), item.amount, item.get_expiry())
                for item in self.policies[kind]
            ]
        for item, key, amount, expiry in entries:
            try:
                if not await self._acquire(key, amount, expiry):
                    stats = await self._limiter.get_window_stats(item, kind, client)
                    return item, max(0.0, stats.reset_time - time.time())
            except Exception as exc:  # the storage's own errors vary by backend
                log.warning("rate limit storage unavailable", error=repr(exc))
                return None
        return None

    def policy_header(self, kind: str) -> str:
        return ", ".join(
            f'"{kind}-{i}";q={item.amount};w={item.get_expiry()}'
            for i, item in enumerate(self.policies[kind])
        )


def rate_limited(
    limiter: RateLimiter, kind: str, item: RateLimitItem, wait: float, path: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The 429 problem of a client over ``item`` (its body, and its headers after the content
    ones): ``Retry-After`` and the IETF ``RateLimit-Policy`` / ``RateLimit`` headers."""
    seconds = max(1, math.ceil(wait))
    index = limiter.policies[kind].index(item)
    body = json_bytes(
        {
            "type": f"{PROBLEM_TYPE_PREFIX}rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": f"This client is over its limit of {item}; retry in {seconds} s.",
            "instance": path,
        }
    )
    return body, [
        (b"retry-after", str(seconds).encode()),
        (b"ratelimit-policy", limiter.policy_header(kind).encode()),
        (b"ratelimit", f'"{kind}-{index}";r=0;t={seconds}'.encode()),
    ]


class SearchCap:
    """At most ``limit`` searches (list requests with a non-empty ``q``) run at once; the others
    wait up to ``wait_seconds`` for a turn, then get 503 with Retry-After. A burst of
    expensive queries then leaves the rest of the pool to every other request."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.wait_seconds = wait_seconds

    async def acquire(self) -> bool:
        """Wait for a slot: True once one is held (release it), False when none came in time."""
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait_seconds)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        self.slots.release()


def is_search(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    if b"q=" not in query or scope["method"] != "GET":
        return False
    values = parse_qs(query.decode("latin-1")).get("q", [])
    return any(value.strip() for value in values)


def searches_busy(path: str) -> bytes:
    """The 503 problem of a search that found no slot (sent with ``Retry-After``)."""
    return json_bytes(
        {
            "type": f"{PROBLEM_TYPE_PREFIX}database-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "Too many searches are running; retry shortly.",
            "instance": path,
        }
    )
