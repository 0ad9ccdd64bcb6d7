"""The read side's connections (shared.persistence.reads.ReadConnections), on fake connections:
each connection serves one read at a time, none is lost or opened past the limit, waiting reads
are served first come first served and give up after the wait."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import pytest

from shared.persistence.reads import ReadConnections


class FakeConnection:
    numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.numbers)
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.closed = True

    async def close(self, **_: float) -> None:
        self.closed = True


class Server:
    """Opens fake connections; ``fail`` makes the next opens fail."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.fail = False

    async def connect(self) -> Any:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("connection refused")
        connection = FakeConnection()
        self.opened.append(connection)
        return connection


def pool(server: Server, size: int = 2, wait: float = 1.0, idle: float = 0.0) -> ReadConnections:
    return ReadConnections(server.connect, max_size=size, wait_seconds=wait, max_idle=idle)


async def test_connections_are_opened_on_demand_reused_and_never_past_the_limit() -> None:
    server = Server()
    connections = pool(server, size=2)
    first = await connections.acquire()
    second = await connections.acquire()
    connections.release(first)
    again = await connections.acquire()
    assert again is first  # reused, not opened again
    assert len(server.opened) == 2
    connections.release(again)
    connections.release(second)
    assert (connections.size, connections.idle) == (2, 2)


async def test_waiting_reads_are_served_in_order_and_time_out() -> None:
    server = Server()
    connections = pool(server, size=1, wait=0.2)
    held = await connections.acquire()
    served: list[int] = []

    async def read(n: int) -> None:
        connection = await connections.acquire()
        served.append(n)
        await asyncio.sleep(0)
        connections.release(connection)

    readers = [asyncio.create_task(read(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert connections.waiting == 3
    connections.release(held)
    await asyncio.gather(*readers)
    assert served == [0, 1, 2]
    assert len(server.opened) == 1

    held = await connections.acquire()
    with pytest.raises(TimeoutError):
        await connections.acquire()
    connections.release(held)
    assert (connections.size, connections.idle, connections.waiting) == (1, 1, 0)


async def test_a_waiter_cancelled_as_it_is_served_loses_no_connection() -> None:
    server = Server()
    connections = pool(server, size=1)
    held = await connections.acquire()
    waiter = asyncio.create_task(connections.acquire())
    await asyncio.sleep(0.01)
    connections.release(held)  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (connections.size, connections.idle) == (1, 1)
    assert await connections.acquire() is held


async def test_a_broken_or_expired_connection_is_replaced_and_its_place_goes_to_a_waiter() -> None:
    server = Server()
    connections = pool(server, size=1)
    held = await connections.acquire()
    waiter = asyncio.create_task(connections.acquire())
    await asyncio.sleep(0.01)
    cast(FakeConnection, held).terminate()  # its statement was interrupted
    connections.release(held)
    fresh = await asyncio.wait_for(waiter, 1)
    assert fresh is not held
    assert not fresh.is_closed()
    connections.expire()  # e.g. a dead connection was met: replace every one open now
    connections.release(fresh)
    assert connections.idle == 0
    await asyncio.sleep(0.01)
    assert fresh.is_closed()
    newer = await connections.acquire()
    assert newer not in (held, fresh)
    assert connections.size == 1


async def test_a_failed_open_frees_its_place() -> None:
    server = Server()
    connections = pool(server, size=1)
    server.fail = True
    with pytest.raises(OSError, match="refused"):
        await connections.acquire()
    assert connections.size == 0
    server.fail = False
    assert not (await connections.acquire()).is_closed()


async def test_connections_idle_past_the_limit_are_replaced() -> None:
    server = Server()
    connections = pool(server, size=1, idle=0.05)
    first = await connections.acquire()
    connections.release(first)
    await asyncio.sleep(0.1)
    second = await connections.acquire()
    assert second is not first
    await asyncio.sleep(0)
    assert first.is_closed()


async def test_closing_closes_idle_connections_and_lent_ones_when_returned() -> None:
    server = Server()
    connections = pool(server, size=2)
    lent = await connections.acquire()
    idle = await connections.acquire()
    connections.release(idle)
    await connections.close()
    assert idle.is_closed()
    assert not lent.is_closed()
    connections.release(lent)
    await asyncio.sleep(0)
    assert lent.is_closed()
    assert connections.size == 0
