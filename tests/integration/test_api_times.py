"""The read side writes times in SQL (shared.persistence.reads.api_time_sql) exactly as the API's
JSON writes a datetime (orjson, pydantic): a GET shows a book's times as its POST did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.persistence.reads import api_time_sql
from shared.web.responses import json_bytes

MOMENTS = [
    datetime(2026, 12, 2, 16, 40, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 2, 16, 40, 0, 120000, tzinfo=UTC),  # trailing zeros kept: 6 digits
    datetime(2026, 12, 2, 16, 40, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 2, 16, 40, 0, tzinfo=UTC),  # a whole second: no fraction at all
    datetime(1999, 1, 1, 0, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-5))),  # to UTC
]


@pytest.mark.parametrize("moment", MOMENTS, ids=lambda m: m.isoformat())
async def test_sql_writes_a_time_as_the_json_of_the_api_does(
    engine: AsyncEngine, moment: datetime
) -> None:
    async with engine.connect() as conn:
        # Whatever the session's zone: the time is written in UTC.
        await conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        written = await conn.scalar(
            text(f"SELECT {api_time_sql('t')} FROM (SELECT CAST(:t AS timestamptz) AS t) AS x"),
            {"t": moment},
        )
    # The API's times are in UTC (the domain's clock), which orjson writes with "Z".
    assert written == orjson.loads(json_bytes({"t": moment.astimezone(UTC)}))["t"]
    assert datetime.fromisoformat(written) == moment
