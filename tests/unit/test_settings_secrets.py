"""Passwords in database URLs never show in reprs, validation errors or the start-up log."""

from __future__ import annotations

import pydantic
import pytest

from library.bootstrap.app import create_app
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS

PASSWORD = "hunter2-secret"


def test_settings_never_show_a_password() -> None:
    settings = Settings(
        database_url=f"postgresql://app:{PASSWORD}@db.example/library",
        migration_database_url=f"postgres://owner:{PASSWORD}@db.example/library",
    )
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert PASSWORD not in text
    assert settings.require_database_url().startswith("postgresql+asyncpg://app:")
    assert PASSWORD in settings.require_migration_url()


@pytest.mark.parametrize(
    "url", [f"mysql://root:{PASSWORD}@db/x", f"postgresql://root:{PASSWORD}@db:notaport/x"]
)
def test_a_refused_url_is_not_quoted_in_the_error(url: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(database_url=url)
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in repr(refused.value)


async def test_the_start_up_log_hides_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(
        database_url=f"postgresql://app:{PASSWORD}@127.0.0.1:1/none",
        log_format="json",
        db_connect_timeout_seconds=1,
        **AUTH_SETTINGS,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    logged = capsys.readouterr().err
    assert '"event":"started"' in logged
    assert PASSWORD not in logged
