"""Limits per client: a rate per token sub (or address), in memory or in Redis; 429 + headers."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from shared.settings import Settings
from tests.auth import bearer
from tests.integration.helpers import API, assert_problem, running_app

REDIS_URL = os.environ.get("LIBRARY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_answers() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not _redis_answers() and not os.environ.get("LIBRARY_TEST_REQUIRE_REDIS"),
    reason=f"no Redis at {REDIS_URL} (CI sets LIBRARY_TEST_REQUIRE_REDIS=1: it must run there)",
)


def _limited(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_anonymous": "3/minute",
            "rate_limit_authenticated": "5/minute",
            # Keys of this test's own: other runs on the same Redis count elsewhere.
            "rate_limit_namespace": f"library-test-{uuid.uuid4().hex}",
            **changes,
        }
    )


def _assert_limited(response: httpx.Response, kind: str, amount: int) -> None:
    assert_problem(response, 429, "rate-limited")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-policy"] == f'"{kind}-0";q={amount};w=60'
    remaining = response.headers["ratelimit"]
    assert remaining.startswith(f'"{kind}-0";r=0;t=')
    assert response.headers["cache-control"] == "no-store"


async def _anonymous_and_per_sub_limits(settings: Settings) -> None:
    async with running_app(settings) as (_, client):
        anonymous = {"Authorization": ""}
        for _ in range(3):
            assert (await client.get(f"{API}/books", headers=anonymous)).status_code == 200
        _assert_limited(await client.get(f"{API}/books", headers=anonymous), "anonymous", 3)
        # An invalid token does not escape the address's limit.
        junk = {"Authorization": "Bearer junk"}
        _assert_limited(await client.get(f"{API}/books", headers=junk), "anonymous", 3)
        # Health checks are not limited.
        assert (await client.get("/health/live", headers=anonymous)).status_code == 200
        # Each token's sub has its own budget, whatever the address.
        alice, bob = bearer(sub=f"alice-{uuid.uuid4()}"), bearer(sub=f"bob-{uuid.uuid4()}")
        for _ in range(5):
            assert (await client.get(f"{API}/books", headers=alice)).status_code == 200
        _assert_limited(await client.get(f"{API}/books", headers=alice), "authenticated", 5)
        refused_write = await client.post(f"{API}/authors", json={"name": "X"}, headers=alice)
        _assert_limited(refused_write, "authenticated", 5)
        assert (await client.get(f"{API}/books", headers=bob)).status_code == 200


async def test_limits_per_client_in_memory(settings: Settings) -> None:
    await _anonymous_and_per_sub_limits(_limited(settings))


@needs_redis
async def test_limits_per_client_in_redis(settings: Settings) -> None:
    await _anonymous_and_per_sub_limits(_limited(settings, redis_url=REDIS_URL))


@needs_redis
async def test_two_processes_on_one_redis_share_the_limit(settings: Settings) -> None:
    shared = _limited(settings, redis_url=REDIS_URL)
    alice = bearer(sub=f"alice-{uuid.uuid4()}")
    async with running_app(shared) as (_, first), running_app(shared) as (_, second):
        statuses = []
        for client in (first, second, first, second, first, second):
            statuses.append((await client.get(f"{API}/books", headers=alice)).status_code)
        assert statuses == [200, 200, 200, 200, 200, 429]


async def test_in_memory_counters_are_per_process(settings: Settings) -> None:
    alone = _limited(settings)
    alice = bearer(sub=f"alice-{uuid.uuid4()}")
    async with running_app(alone) as (_, first), running_app(alone) as (_, second):
        statuses = []
        for client in (first, second, first, second, first, second):
            statuses.append((await client.get(f"{API}/books", headers=alice)).status_code)
        assert statuses == [200] * 6


async def test_a_redis_that_does_not_answer_does_not_refuse_clients(settings: Settings) -> None:
    broken = _limited(settings, redis_url="redis://127.0.0.1:1/0")
    async with running_app(broken) as (_, client):
        for _ in range(5):
            assert (await client.get(f"{API}/books")).status_code == 200


def test_the_defaults_let_a_busy_honest_client_through() -> None:
    defaults = Settings(database_url=None)
    assert defaults.rate_limit_enabled
    assert defaults.rate_limit_anonymous == "50/second;1000/minute"
    assert defaults.rate_limit_authenticated == "200/second;6000/minute"
