"""``library token``: one token on stdout, signed with the key ``library dev`` verifies with."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from library import cli
from library.cli.token import use_development_key
from shared.settings import Settings
from shared.web.auth import authenticator_from


async def test_the_printed_token_is_what_the_development_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the key lives in this checkout's .pgdata/
    for name in list(os.environ):
        if name.startswith("LIBRARY_AUTH_"):
            monkeypatch.delenv(name)
    cli.main(["token", "--scope", "catalog:write", "--ttl", "120", "--sub", "alice"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    printed = out.strip()
    key_file = tmp_path / ".pgdata" / "dev-auth" / "signing-key.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # What `library dev` (make run) configures before it serves:
    monkeypatch.setenv("LIBRARY_ENVIRONMENT", "development")
    use_development_key()
    authenticator = authenticator_from(Settings(database_url=None))
    assert authenticator is not None
    await authenticator.start()
    principal = await authenticator.verify(printed)
    assert principal.sub == "alice"
    assert principal.scopes == {"catalog:write"}
    assert 110 < principal.expires_at - time.time() <= 120
    # A second token comes from the same key; the defaults are one hour and a development sub.
    cli.main(["token"])
    default = await authenticator.verify(capsys.readouterr().out.strip())
    assert default.sub == "developer"
    assert default.scopes == {"catalog:write", "catalog:admin"}
    assert 3590 < default.expires_at - time.time() <= 3600
