"""The migrations, tested on an empty database of their own (pytest-alembic).

- one head; upgrade from empty to head one revision at a time;
- every downgrade undoes its upgrade (down to base and up again);
- the models match the migrated schema (autogenerate finds no difference).
"""

import asyncio
from collections.abc import Iterator

import alembic.config
import pytest
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.integration.postgres import Server

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> alembic.config.Config:
    config = alembic.config.Config("alembic.ini")
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture
def alembic_engine(postgres_server: Server) -> Iterator[AsyncEngine]:
    name = postgres_server.migrations_database
    postgres_server.recreate_database(name)
    engine = create_async_engine(postgres_server.database_url(name), poolclass=pool.NullPool)
    yield engine
    asyncio.run(engine.dispose())
    postgres_server.drop_database(name)
