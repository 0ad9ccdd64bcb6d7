"""Workers, the connection budget and the transaction-mode pooler, as the settings decide them
(no database: ``library serve`` refuses before anything starts)."""

from __future__ import annotations

import os

import pytest

from library.cli import main
from shared.persistence.db import pooler_connect_args, server_settings, session_settings
from shared.settings import Settings, available_cpus

URL = "postgresql://app@127.0.0.1:1/library"
DIRECT = "postgresql://app@127.0.0.1:2/library"


@pytest.fixture(autouse=True)
def _no_serving_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LIBRARY_WORKERS",
        "LIBRARY_ENVIRONMENT",
        "LIBRARY_DB_CONNECTION_BUDGET",
        "LIBRARY_DB_POOLER",
        "LIBRARY_DIRECT_DATABASE_URL",
        "LIBRARY_DB_POOL_SIZE",
        "LIBRARY_DB_MAX_OVERFLOW",
        "LIBRARY_DB_READ_POOL_SIZE",
        "LIBRARY_EVENTS_RELAY_POOL_SIZE",
        "LIBRARY_EVENTS_RELAY_ENABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)


@pytest.fixture
def never_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal that regressed fails the test instead of serving."""
    import uvicorn

    def served(*args: object, **kwargs: object) -> None:
        raise AssertionError("library serve started")

    monkeypatch.setattr(uvicorn, "run", served)


def test_workers_default_to_the_cpus_in_production_and_to_one_elsewhere() -> None:
    assert Settings(environment="production").workers == available_cpus()
    assert Settings(environment="development").workers == 1
    assert Settings(environment="test").workers == 1
    assert Settings(environment="production", workers=3).workers == 3


def test_the_budget_counts_every_pool_of_every_worker() -> None:
    settings = Settings(
        workers=2, db_pool_size=10, db_max_overflow=5, db_read_pool_size=12, db_connection_budget=60
    )
    assert settings.connections_per_worker() == {"write": 15, "read": 12, "relay": 3}
    assert settings.within_connection_budget() is settings  # 2 x 30 = 60: exactly the budget
    # Sizes that were set are never changed behind the operator's back: refused.
    with pytest.raises(RuntimeError, match=r"3 workers x \(write 15 \+ read 12 \+ relay 3 = 30"):
        settings.model_copy(update={"workers": 3}).within_connection_budget()
    # Without the relay, its connections are not counted.
    without_relay = settings.model_copy(update={"events_relay_enabled": False})
    assert sum(without_relay.connections_per_worker().values()) == 27
    fits = without_relay.model_copy(update={"db_connection_budget": 54})
    assert fits.within_connection_budget() is fits


def test_the_default_pools_shrink_to_share_the_budget_among_the_workers() -> None:
    # Defaults: 16 write + 16 read + 3 relay = 35 a worker; 3 workers would open 105 > 90.
    fitted = Settings(workers=3).within_connection_budget()
    assert fitted.connections_per_worker() == {"write": 13, "read": 14, "relay": 3}
    assert fitted.workers * sum(fitted.connections_per_worker().values()) == 90
    # Too many workers for even one connection of each pool each: refused.
    with pytest.raises(RuntimeError, match="40 workers x"):
        Settings(workers=40).within_connection_budget()


@pytest.mark.usefixtures("never_served")
def test_serve_gives_its_workers_the_fitted_pool_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from library.cli import serve

    # serve sets the fitted sizes in the environment: in a copy, dropped after the test.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    started: list[tuple[int, dict[str, str]]] = []
    monkeypatch.setattr(
        serve,
        "_supervise",
        lambda config: started.append(
            (config.workers, {k: v for k, v in os.environ.items() if k.startswith("LIBRARY_")})
        ),
    )
    main(["serve", "--workers", "3"])
    [(workers, env)] = started
    assert workers == 3
    assert env["LIBRARY_DB_POOL_SIZE"] == "13"
    assert env["LIBRARY_DB_MAX_OVERFLOW"] == "0"
    assert env["LIBRARY_DB_READ_POOL_SIZE"] == "14"
    assert env["LIBRARY_EVENTS_RELAY_POOL_SIZE"] == "3"


@pytest.mark.usefixtures("never_served")
def test_serve_refuses_set_pool_sizes_beyond_the_budget_with_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIBRARY_DB_POOL_SIZE", "16")
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--workers", "3"])
    message = str(refused.value.code)
    assert message.startswith("error: 3 workers x (write 16 + read 16 + relay 3 = 35")
    assert "LIBRARY_DB_CONNECTION_BUDGET=90" in message
    assert "LIBRARY_DB_POOL_SIZE" in message


@pytest.mark.usefixtures("never_served")
def test_serve_refuses_a_pooler_without_postgresql_s_own_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIBRARY_DB_POOLER", "transaction")
    with pytest.raises(SystemExit, match="LIBRARY_DIRECT_DATABASE_URL"):
        main(["serve", "--workers", "1"])


def test_direct_connections_keep_their_statement_cache_and_session_settings() -> None:
    settings = Settings()
    assert pooler_connect_args(settings) == {}
    assert server_settings(settings) == session_settings(settings)
    assert settings.require_direct_url() == settings.require_database_url()


def test_through_a_pooler_statements_are_unnamed_and_only_passed_on_settings_are_sent() -> None:
    settings = Settings(db_pooler="transaction", direct_database_url=DIRECT)
    assert pooler_connect_args(settings) == {"statement_cache_size": 0}
    # PgBouncer 1.18 refuses a client sending statement_timeout (or drops it when told to
    # ignore it): those are the role's settings then (docs/operations.md).
    assert server_settings(settings) == {"application_name": "library", "timezone": "UTC"}
    assert settings.require_direct_url() == "postgresql+asyncpg://app@127.0.0.1:2/library"
    # Migrations run on PostgreSQL itself, not through the pooler.
    assert settings.require_migration_url() == settings.require_direct_url()


def test_what_needs_a_session_of_its_own_goes_past_the_pooler() -> None:
    """The relay's engine, an export's cursor and a seed's COPY use ``direct()``."""
    pooled = Settings(db_pooler="transaction", direct_database_url=DIRECT)
    direct = pooled.direct()
    assert direct.require_database_url() == "postgresql+asyncpg://app@127.0.0.1:2/library"
    assert direct.db_pooler == "none"
    assert pooled_relay_url(pooled) == direct.require_database_url()
    plain = Settings()
    assert plain.direct() is plain


def pooled_relay_url(settings: Settings) -> str:
    from library.bootstrap.container import RootContainer

    container = RootContainer()
    container.settings.override(settings)
    engine = container.relay_engine()
    try:
        return engine.url.render_as_string(hide_password=False)
    finally:
        engine.sync_engine.dispose()
