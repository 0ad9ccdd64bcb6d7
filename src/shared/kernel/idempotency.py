"""Safe retries of writes: the Idempotency-Key port and the rule every use case follows.

A client sends ``Idempotency-Key`` with a POST; the use case records the key, a fingerprint of
the request and the response it gave, in the same transaction as its write. A repeat with the
same key and fingerprint gets the stored response again (nothing is written twice); the same key
with another fingerprint is refused; a repeat while the first is still running is refused too.
Framework-free: the SQLAlchemy adapter lives in ``shared.persistence.idempotency_store``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Generic, Protocol, TypeVar

from shared.kernel.errors import FieldError, IdempotencyKeyReusedError

T = TypeVar("T")

KEY_TTL: Final = timedelta(hours=24)
"""How long a key is remembered: a repeat after this is a new request."""

KEY_MAX_LENGTH: Final = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response a write gave: what a repeat with the same key receives again."""

    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    replayed: bool = False  # True when this is the stored copy sent again


@dataclass(frozen=True, slots=True)
class Idempotency(Generic[T]):
    """A client's key for one write, the request's fingerprint, and how to render the response.

    ``scope`` names the operation (e.g. ``POST /api/v1/books``): the same key on another
    operation is another key.
    """

    scope: str
    key: str
    fingerprint: str
    respond: Callable[[T], StoredResponse]


class IdempotencyStore(Protocol):
    """Remembers keys and their responses, inside the unit of work's transaction."""

    async def claim(self, scope: str, key: str, now: datetime) -> tuple[str, StoredResponse] | None:
        """Reserve the key for this transaction; the (fingerprint, response) stored for it, if any.

        IdempotencyKeyInUseError if another transaction holds the key (its request is running).
        A key older than KEY_TTL counts as absent.
        """
        ...

    async def save(
        self, scope: str, key: str, fingerprint: str, response: StoredResponse, now: datetime
    ) -> None:
        """Store the response given to the key (committed, or not, with the write)."""
        ...


async def perform_once(
    store: IdempotencyStore,
    once: Idempotency[T],
    now: datetime,
    write: Callable[[], Awaitable[T]],
) -> StoredResponse:
    """Run ``write`` unless ``once``'s key already has a response; record the response it gives.

    Call it inside the unit of work, then commit: the key and the write stand or fall together.
    """
    stored = await store.claim(once.scope, once.key, now)
    if stored is not None:
        fingerprint, response = stored
        if fingerprint != once.fingerprint:
            msg = (
                "This Idempotency-Key was used for a different request; "
                "use a new key for a new request."
            )
            raise IdempotencyKeyReusedError(
                msg, errors=[FieldError(loc=("header", "Idempotency-Key"), msg=msg)]
            )
        return dataclasses.replace(response, replayed=True)
    response = once.respond(await write())
    await store.save(once.scope, once.key, once.fingerprint, response, now)
    return response
