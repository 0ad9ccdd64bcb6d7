"""Log lines: the timestamp is the one structlog's ISO UTC stamper writes, for the same instant."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import structlog
from hypothesis import example, given
from hypothesis import strategies as st

from shared.logging import _UtcTimestamp

# From 1970 to 2100, at any microsecond (0 included: then no fraction is written).
INSTANTS = st.integers(min_value=0, max_value=4_102_444_800_000_000)


@given(INSTANTS)
@example(1_764_646_313_000_000)  # a whole second: no fraction
@example(1_764_646_313_000_001)
def test_the_timestamp_is_structlogs_iso_utc_stamp(microseconds: int) -> None:
    instant = datetime.fromtimestamp(microseconds / 1_000_000, tz=UTC).replace(
        microsecond=microseconds % 1_000_000
    )
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)
    with mock.patch("time.time_ns", return_value=microseconds * 1000 + 999):
        ours = _UtcTimestamp()(None, "info", {})["timestamp"]
    with mock.patch("structlog.processors.datetime.datetime") as clock:
        clock.now.return_value = instant
        expected = theirs(None, "info", {})["timestamp"]
    assert ours == expected


def test_lines_within_one_second_share_its_prefix_and_differ_in_microseconds() -> None:
    stamp = _UtcTimestamp()
    base = 1_764_646_313 * 1_000_000_000
    with mock.patch("time.time_ns", side_effect=[base + 5_000, base + 999_999_000, base]):
        first, last, whole = (stamp(None, "info", {})["timestamp"] for _ in range(3))
    assert first == "2025-12-02T03:31:53.000005Z"
    assert last == "2025-12-02T03:31:53.999999Z"
    assert whole == "2025-12-02T03:31:53Z"
