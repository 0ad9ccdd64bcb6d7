"""A relay process of its own, for the soak test to kill.

`python -m tests.integration.events.relay_worker`

Reads LIBRARY_DATABASE_URL (and the other LIBRARY_ settings) like the server, runs the app's
outbox relay until killed.
"""

from __future__ import annotations

import asyncio

from library.bootstrap.container import RootContainer


async def main() -> None:
    container = RootContainer()
    relay = container.relay()
    await relay.start()
    print("relay started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
