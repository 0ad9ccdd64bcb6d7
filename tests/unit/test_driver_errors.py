"""How a driver failure reaches the client (shared.persistence.errors.translate)."""

from __future__ import annotations

import asyncpg

from shared.persistence.errors import DRIVER_ERRORS, DatabaseUnavailableError, translate


def test_a_protocol_left_mid_state_by_a_killed_backend_is_a_503_not_a_500() -> None:
    # Seen in the restart fault test: COMMIT on a connection whose INSERT the shutdown cut off.
    exc = asyncpg.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert isinstance(exc, DRIVER_ERRORS)  # the problem handlers see it at all
    assert isinstance(translate(exc), DatabaseUnavailableError)
