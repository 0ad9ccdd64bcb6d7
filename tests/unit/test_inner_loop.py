"""The developer's inner loop: `library dev --reload`, the database URL for psql, the quick
suite and an install without the benchmark tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from library import cli
from library.cli import dev

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What uvicorn.run was called with (nothing is served, nothing is migrated)."""
    import uvicorn

    calls: dict[str, Any] = {}
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://me:secret@db.example:5433/catalog")
    monkeypatch.setattr(dev, "migrate", lambda *_: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.update(app=app, **kwargs))
    return calls


def test_dev_reload_restarts_the_server_on_source_changes(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["dev", "--reload"])
    assert served["reload"] is True
    assert served["reload_dirs"] == [str(ROOT / "src")]
    assert served["factory"] is True  # an import string: the reloader re-imports it
    assert "workers" not in served
    assert "Reloading" in capsys.readouterr().out


def test_dev_without_reload_serves_as_production_does(served: dict[str, Any]) -> None:
    cli.main(["dev"])
    assert "reload" not in served
    assert served["workers"] == 1


def test_dev_prints_the_database_url_for_psql(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["dev"])
    out = capsys.readouterr().out
    assert 'psql: psql "postgresql://me:***@db.example:5433/catalog"' in out


def test_the_embedded_databases_url_is_one_psql_takes() -> None:
    from tools import devdb

    url = devdb.url("/tmp/socket dir", "postgres", "library")  # noqa: S108 - a string only
    assert dev.psql_url(url) == "postgresql://postgres@/library?host=/tmp/socket%20dir"


def test_a_plain_install_leaves_the_benchmark_tools_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "bench" in project["dependency-groups"]
    assert "bench" not in project["tool"]["uv"]["default-groups"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("bench", "bench-quick", "bench-import"):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", makefile, flags=re.MULTILINE)
        assert recipe is not None, target
        assert recipe.group(1).startswith("$(BENCH_RUN)"), target
    assert "BENCH_RUN := $(UV) run --frozen --group bench" in makefile


def test_test_quick_leaves_out_the_long_suites() -> None:
    makefile = (ROOT / "Makefile").read_text()
    markers = re.search(r"^QUICK_MARKERS := (.+)$", makefile, flags=re.MULTILINE)
    assert markers is not None
    assert markers.group(1) == "not fault and not fuzz and not race and not slow"
    command = re.search(
        r'^\t\$\(RUN\) pytest -m "\$\(QUICK_MARKERS\)" (.+)$', makefile, re.MULTILINE
    )
    assert command is not None
    # Both suites, in QUICK_WORKERS processes (one by default).
    assert command.group(1) == (
        "$(if $(filter-out 1,$(QUICK_WORKERS)),-n $(QUICK_WORKERS)) tests/unit tests/integration"
    )
