"""The Idempotency-Key rule itself (shared.kernel.idempotency.perform_once), in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.kernel.errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError
from shared.kernel.idempotency import (
    KEY_TTL,
    Idempotency,
    Once,
    ResultCodec,
    StoredResult,
    perform_once,
)
from tests.fakes import FakeIdempotencyStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class CountingCodec:
    """An int stored as {"n": ...}, counting its encodings and decodings."""

    def __init__(self) -> None:
        self.encoded = 0
        self.decoded = 0
        self.codec = ResultCodec(encode=self._encode, decode=self._decode)

    def _encode(self, n: int) -> StoredResult:
        self.encoded += 1
        return {"n": n}

    def _decode(self, stored: StoredResult) -> int:
        self.decoded += 1
        return int(stored["n"])


def _once(fingerprint: str = "f1", key: str = "k") -> Idempotency:
    return Idempotency(scope="POST /things", key=key, fingerprint=fingerprint)


async def test_the_first_request_writes_and_stores_its_result_a_repeat_gets_it_back() -> None:
    store, codec, writes = FakeIdempotencyStore(), CountingCodec(), []

    async def write() -> int:
        writes.append(1)
        return len(writes)

    first = await perform_once(store, _once(), NOW, write, codec.codec)
    again = await perform_once(store, _once(), NOW, write, codec.codec)
    assert first == Once(1, replayed=False)
    assert again == Once(1, replayed=True)
    assert writes == [1]
    # The result is stored as its codec writes it, encoded once; a repeat decodes it.
    assert await store.claim("POST /things", "k", NOW) == ("f1", {"n": 1})
    assert (codec.encoded, codec.decoded) == (1, 1)


async def test_the_same_key_with_another_fingerprint_is_refused_without_writing() -> None:
    store, codec, writes = FakeIdempotencyStore(), CountingCodec(), []

    async def write() -> int:
        writes.append(1)
        return 1

    await perform_once(store, _once("f1"), NOW, write, codec.codec)
    with pytest.raises(IdempotencyKeyReusedError) as raised:
        await perform_once(store, _once("f2"), NOW, write, codec.codec)
    assert raised.value.errors[0].loc == ("header", "Idempotency-Key")
    assert writes == [1]


async def test_a_key_in_flight_is_refused_without_writing() -> None:
    store = FakeIdempotencyStore(busy={("POST /things", "k")})

    async def write() -> int:
        raise AssertionError("must not write")

    with pytest.raises(IdempotencyKeyInUseError):
        await perform_once(store, _once(), NOW, write, CountingCodec().codec)


async def test_a_failed_write_stores_nothing() -> None:
    store = FakeIdempotencyStore()

    async def write() -> int:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await perform_once(store, _once(), NOW, write, CountingCodec().codec)
    assert store.rows == {}


async def test_after_its_ttl_a_key_is_a_new_request() -> None:
    store, codec, writes = FakeIdempotencyStore(), CountingCodec(), []

    async def write() -> int:
        writes.append(1)
        return len(writes)

    await perform_once(store, _once(), NOW, write, codec.codec)
    later = await perform_once(store, _once(), NOW + KEY_TTL, write, codec.codec)
    assert later == Once(2, replayed=False)
    assert writes == [1, 1]
