"""Safe retries of writes: the Idempotency-Key port and the rule every use case follows.

A client sends ``Idempotency-Key`` with a POST; the use case records the key, a fingerprint of
the request and the result it gave, in the same transaction as its write. A repeat with the
same key and fingerprint gets the stored result again (nothing is written twice); the same key
with another fingerprint is refused; a repeat while the first is still running is refused too.
What is stored is the use case's result (as its ``ResultCodec`` writes it), not an HTTP
response: the route builds the response from the result, fresh or replayed, the same way.
Framework-free: the SQLAlchemy adapter lives in ``shared.persistence.idempotency_store``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

from shared.kernel.errors import FieldError, IdempotencyKeyReusedError

T = TypeVar("T")

KEY_TTL: Final = timedelta(hours=24)
"""How long a key is remembered: a repeat after this is a new request."""

KEY_MAX_LENGTH: Final = 255

StoredResult = dict[str, Any]
"""A result as stored under its key: a JSON object (strings, numbers, booleans, null, lists,
objects), nothing a JSON encoder would have to guess at."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A client's key for one write and the request's fingerprint.

    ``scope`` names the operation (e.g. ``POST /api/v1/books``): the same key on another
    operation is another key.
    """

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ResultCodec(Generic[T]):
    """How a use case's result is stored under a key and read back (``decode(encode(r))`` is
    ``r`` as far as its caller can tell)."""

    encode: Callable[[T], StoredResult]
    decode: Callable[[StoredResult], T]


def stored_time(moment: datetime) -> str:
    """A time as results store it: RFC 3339 in UTC with ``Z``, as the API writes times (so a
    stored result is the resource document the client got: migration 0011)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def read_time(text: str) -> datetime:
    """A time a result stored (``stored_time``), timezone-aware."""
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Once(Generic[T]):
    """The result of a write made with a key, and whether it is the stored result of an earlier
    request with that key (nothing was written this time)."""

    value: T
    replayed: bool = False


class IdempotencyStore(Protocol):
    """Remembers keys and their results, inside the unit of work's transaction."""

    async def claim(self, scope: str, key: str, now: datetime) -> tuple[str, StoredResult] | None:
        """Reserve the key for this transaction; the (fingerprint, result) stored for it, if any.

        IdempotencyKeyInUseError if another transaction holds the key (its request is running).
        A key older than KEY_TTL counts as absent.
        """
        ...

    async def save(
        self, scope: str, key: str, fingerprint: str, result: StoredResult, now: datetime
    ) -> None:
        """Store the result given to the key (committed, or not, with the write)."""
        ...


async def perform_once(
    store: IdempotencyStore,
    once: Idempotency,
    now: datetime,
    write: Callable[[], Awaitable[T]],
    codec: ResultCodec[T],
) -> Once[T]:
    """Run ``write`` unless ``once``'s key already has a result; record the result it gives.

    Call it inside the unit of work, then commit: the key and the write stand or fall together.
    """
    stored = await store.claim(once.scope, once.key, now)
    if stored is not None:
        fingerprint, result = stored
        if fingerprint != once.fingerprint:
            msg = (
                "This Idempotency-Key was used for a different request; "
                "use a new key for a new request."
            )
            raise IdempotencyKeyReusedError(
                msg, errors=[FieldError(loc=("header", "Idempotency-Key"), msg=msg)]
            )
        return Once(codec.decode(result), replayed=True)
    value = await write()
    await store.save(once.scope, once.key, once.fingerprint, codec.encode(value), now)
    return Once(value)
