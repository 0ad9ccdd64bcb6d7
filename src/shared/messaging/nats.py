"""The NATS publisher: a relay subscriber that sends every event to a NATS server.

Subject ``<prefix>.<type>`` (``library.events.book.created``...), payload the event as the
change feed shows it (JSON, actor included: the broker is the operators'), header
``Nats-Msg-Id`` the event's id, so a JetStream stream on those subjects drops the duplicates
that at-least-once delivery can produce. A batch is flushed (the server has it) before the
relay moves the subscriber's position: a publisher killed mid-batch sends the batch again.
"""

from __future__ import annotations

from collections.abc import Sequence

import nats
import orjson
from nats.aio.client import Client

from shared.kernel.events import DomainEvent

SUBSCRIBER = "broker.nats"


def payload(event: DomainEvent) -> bytes:
    """The event as JSON, in the change feed's shape."""
    return orjson.dumps(
        {
            "id": None if event.event_id is None else str(event.event_id),
            "type": event.type,
            "resource_id": str(event.resource_id),
            "version": event.version,
            "occurred_at": event.occurred_at,
            "data": event.data,
            "request_id": event.origin.request_id,
            "actor": event.origin.actor,
        },
        option=orjson.OPT_UTC_Z,
    )


class NatsPublisher:
    """Publishes batches of events to ``url`` (connected at the first batch, kept)."""

    def __init__(self, url: str, prefix: str = "library.events") -> None:
        self._url = url
        self._prefix = prefix
        self._client: Client | None = None

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Send ``events`` and wait until the server has them."""
        if self._client is None or not self._client.is_connected:
            self._client = await nats.connect(
                self._url, connect_timeout=5, max_reconnect_attempts=3
            )
        for event in events:
            headers = {} if event.event_id is None else {"Nats-Msg-Id": str(event.event_id)}
            await self._client.publish(
                f"{self._prefix}.{event.type}", payload(event), headers=headers
            )
        await self._client.flush(timeout=10)

    async def close(self) -> None:
        """Close the connection (the relay's stop)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
