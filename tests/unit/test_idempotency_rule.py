"""The Idempotency-Key rule itself (shared.kernel.idempotency.perform_once), in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.kernel.errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError
from shared.kernel.idempotency import Idempotency, StoredResponse, perform_once

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class FakeIdempotencyStore:
    """Keys in a dict; ``busy`` marks keys another transaction holds."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], tuple[str, StoredResponse]] = {}
        self.busy: set[tuple[str, str]] = set()

    async def claim(self, scope: str, key: str, now: datetime) -> tuple[str, StoredResponse] | None:
        if (scope, key) in self.busy:
            raise IdempotencyKeyInUseError("in use")
        return self.saved.get((scope, key))

    async def save(
        self, scope: str, key: str, fingerprint: str, response: StoredResponse, now: datetime
    ) -> None:
        self.saved[(scope, key)] = (fingerprint, response)


def _once(fingerprint: str = "f1", key: str = "k") -> Idempotency[int]:
    return Idempotency(
        scope="POST /things",
        key=key,
        fingerprint=fingerprint,
        respond=lambda n: StoredResponse(status=201, body=f'{{"n": {n}}}'),
    )


async def test_the_first_request_writes_and_records_its_response() -> None:
    store, writes = FakeIdempotencyStore(), []

    async def write() -> int:
        writes.append(1)
        return len(writes)

    first = await perform_once(store, _once(), NOW, write)
    again = await perform_once(store, _once(), NOW, write)
    assert (first.body, first.replayed) == ('{"n": 1}', False)
    assert (again.body, again.replayed) == ('{"n": 1}', True)
    assert writes == [1]


async def test_the_same_key_with_another_fingerprint_is_refused_without_writing() -> None:
    store, writes = FakeIdempotencyStore(), []

    async def write() -> int:
        writes.append(1)
        return 1

    await perform_once(store, _once("f1"), NOW, write)
    with pytest.raises(IdempotencyKeyReusedError) as raised:
        await perform_once(store, _once("f2"), NOW, write)
    assert raised.value.errors[0].loc == ("header", "Idempotency-Key")
    assert writes == [1]


async def test_a_key_in_flight_is_refused_without_writing() -> None:
    store = FakeIdempotencyStore()
    store.busy.add(("POST /things", "k"))

    async def write() -> int:
        raise AssertionError("must not write")

    with pytest.raises(IdempotencyKeyInUseError):
        await perform_once(store, _once(), NOW, write)


async def test_a_failed_write_records_nothing() -> None:
    store = FakeIdempotencyStore()

    async def write() -> int:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await perform_once(store, _once(), NOW, write)
    assert store.saved == {}
