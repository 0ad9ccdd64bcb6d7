"""The replica's settings, its share of the connection budget, and Commit-LSN's text form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.kernel.consistency import format_lsn, parse_lsn
from shared.settings import Settings

REPLICA = "postgresql://library@replica.internal:5432/library"


def test_a_replica_url_is_checked_like_the_database_url() -> None:
    settings = Settings(replica_database_url=REPLICA)
    assert settings.replica_database_url is not None
    assert settings.replica_database_url.get_secret_value().startswith("postgresql+asyncpg://")
    assert settings.replica_max_lag_ms == 1000
    assert settings.replica_wait_ms == 200
    with pytest.raises(ValidationError):
        Settings(replica_database_url="mysql://nope@host/db")
    replica = settings.replica()
    assert replica is not None
    assert replica.db_pooler == "none"
    assert Settings().replica() is None


def test_the_primary_read_pool_is_counted_in_the_budget() -> None:
    settings = Settings(replica_database_url=REPLICA, workers=2)
    pools = settings.connections_per_worker()
    assert pools == {"write": 16, "read": 16, "primary-read": 8, "relay": 3}
    assert settings.within_connection_budget() is settings  # 2 x 43 = 86 <= 90
    fitted = Settings(replica_database_url=REPLICA, workers=3).within_connection_budget()
    assert fitted.workers * sum(fitted.connections_per_worker().values()) <= 90
    assert "primary-read" not in Settings(workers=2).connections_per_worker()


@pytest.mark.parametrize(
    ("text", "position"),
    [("0/0", 0), ("0/16B3F48", 0x16B3F48), ("1/0", 1 << 32), ("FFFFFFFF/FFFFFFFF", 2**64 - 1)],
)
def test_lsns_read_and_write_as_postgresql_does(text: str, position: int) -> None:
    assert parse_lsn(text) == position
    assert format_lsn(position) == text
    assert parse_lsn(text.lower()) == position


@pytest.mark.parametrize("bad", ["", "0", "0/", "/0", "1/2/3", "G/0", "123456789/0", "0/-1", "x"])
def test_anything_else_is_not_an_lsn(bad: str) -> None:
    with pytest.raises(ValueError, match="WAL position"):
        parse_lsn(bad)
