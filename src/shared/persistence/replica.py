"""Reads from a streaming replica (docs/operations.md "Read replica").

One :class:`ReplicaTracker` per process asks the replica, every ``interval`` seconds on a
connection of its own, how far it has replayed the primary's WAL and how late it is. Reads
then choose without a round trip of their own (:class:`ReadRouting`): the replica while it
answers and lags at most ``LIBRARY_REPLICA_MAX_LAG_MS``, else the primary. A read that carries
a client's ``Commit-LSN`` is served by the replica once it has replayed that far: it waits for
the tracker's next answers (the tracker asks at once, then every few milliseconds, while
someone waits), up to ``LIBRARY_REPLICA_WAIT_MS``, then reads from the primary instead.

The lag: none while the replica has replayed all it received and still receives; else the
time since the last transaction it replayed was committed (an upper bound: the oldest
transaction it has not replayed is younger), or, when it receives nothing (its primary is
gone, the link is cut), the time since the tracker saw it stop. It is never underestimated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, Literal

import asyncpg
import structlog

from shared.kernel.consistency import read_after

log = structlog.get_logger("library.db")

State = Literal["up", "down", "lagging"]

# One statement: the replay and receive positions (bytes since 0/0), whether a WAL receiver
# runs (its row, without its status: that needs pg_read_all_stats, which the app's role has
# no need of), and the milliseconds since the last replayed transaction committed.
_STATUS = """
SELECT pg_is_in_recovery() AS recovering,
       (COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) - '0/0'::pg_lsn)::bigint
           AS replayed,
       (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint AS received,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS streaming,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000
           AS since_replayed_ms
"""


class ReplicaTracker:
    """How far the replica has replayed, and its state, refreshed by a task of its own."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        max_lag_ms: int,
        interval: float = 0.05,
        waiting_interval: float = 0.002,
    ) -> None:
        self._connect = connect
        self.max_lag_ms = max_lag_ms
        self.interval = interval
        self.waiting_interval = waiting_interval
        self.replayed = -1  # the replay position last seen (-1: unknown)
        self.lag_ms: float | None = None
        self.state: State = "down"
        # Reads may go to the replica (up, within the lag bound): the one attribute a plain
        # read looks at.
        self.usable = False
        self._waiters = 0
        self._wake = asyncio.Event()
        self._answered = asyncio.Event()  # set (and replaced) after every answer
        self._silent_since: float | None = None  # when the WAL receiver was last seen stopped
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()

    def failed(self) -> None:
        """A read found the replica unreachable: down until the tracker hears from it again."""
        self._set("down", None)

    async def refresh(self) -> None:
        """Ask the replica now (tests; the task does it on its own)."""
        await self._poll()

    async def wait_for(self, position: int, seconds: float) -> bool:
        """True once the replica is usable and has replayed ``position``; False after
        ``seconds`` without (the caller reads from the primary)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self._waiters += 1
        self._wake.set()  # the tracker asks now, not at its next tick
        try:
            while not (self.usable and self.replayed >= position):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                answered = self._answered
                try:
                    async with asyncio.timeout(remaining):
                        await answered.wait()
                except TimeoutError:
                    return self.usable and self.replayed >= position
            return True
        finally:
            self._waiters -= 1

    def describe(self) -> dict[str, Any]:
        """The replica's entry of /health/ready (its state and lag)."""
        lag = self.lag_ms
        return {"state": self.state, "lag_ms": None if lag is None else round(lag, 1)}

    async def _run(self) -> None:
        while True:
            await self._poll()
            if self._waiters:
                pause = self.waiting_interval
            elif self.state == "down":
                pause = max(self.interval, 0.5)  # no storm of connection attempts
            else:
                pause = self.interval
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _poll(self) -> None:
        try:
            connection = self._connection
            if connection is None or connection.is_closed():
                connection = self._connection = await self._connect()
            async with asyncio.timeout(max(1.0, self.interval * 10)):
                row = await connection.fetchrow(_STATUS)
        except Exception as exc:  # whatever it is, the replica did not answer
            if self.state != "down":
                log.warning("replica unreachable: reads go to the primary", error=repr(exc))
            await self._disconnect()
            self._set("down", None)
        else:
            if row is not None:
                self._update(row)
        answered, self._answered = self._answered, asyncio.Event()
        answered.set()

    def _update(self, row: asyncpg.Record) -> None:
        now = monotonic()
        self.replayed = max(self.replayed, int(row["replayed"]))
        if not row["recovering"]:
            lag: float = 0.0  # promoted, or not a replica at all: it has all it will have
        elif row["received"] is not None and row["received"] > row["replayed"]:
            lag = float(row["since_replayed_ms"] or 0.0)
        elif row["streaming"]:
            lag = 0.0
        else:
            if self._silent_since is None:
                self._silent_since = now
            lag = (now - self._silent_since) * 1000
        if row["streaming"] or not row["recovering"]:
            self._silent_since = None
        self._set("lagging" if lag > self.max_lag_ms else "up", lag)

    def _set(self, state: State, lag: float | None) -> None:
        if state != self.state:
            log.info("replica state", state=state, lag_ms=lag)
        if state == "down":
            # A replica that comes back (restarted, or another one) may have replayed less than
            # it had: what it replays is learnt again from it, never remembered across.
            self.replayed = -1
        self.state = state
        self.lag_ms = lag
        self.usable = state == "up"

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()


class ReadRouting:
    """Which read connections serve a read: the replica's, or the primary's (see the module)."""

    def __init__(
        self, tracker: ReplicaTracker, replica: Any, primary: Any, wait_seconds: float
    ) -> None:
        self.tracker = tracker
        self.replica = replica
        self.primary = primary
        self.wait_seconds = wait_seconds

    def now(self) -> Any:
        """The connections to read from, or None when the read must wait for the replica."""
        tracker = self.tracker
        if not tracker.usable:
            return self.primary
        needed = read_after.get()
        if needed is None or tracker.replayed >= needed:
            return self.replica
        return None

    async def after_wait(self) -> Any:
        """The replica's connections once it has replayed the request's Commit-LSN, or the
        primary's after LIBRARY_REPLICA_WAIT_MS."""
        needed = read_after.get()
        if needed is not None and await self.tracker.wait_for(needed, self.wait_seconds):
            return self.replica
        return self.primary
