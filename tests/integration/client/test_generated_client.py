"""A typed client generated from the committed openapi.json (openapi-python-client, from PyPI,
offline) works against the running server as it is: the document is usable by a generator.

The client is generated into a temporary folder, not committed: it is derived from
openapi.json, which is committed and kept current by its own test, so a committed copy would only
be a second thing to regenerate (and to conflict on) with every API change.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.auth import token
from tests.integration.faults.server import PROJECT_ROOT, ServerProcess

SESSION = Path(__file__).with_name("session.py")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder holding ``library_client``, generated from openapi.json; on ``sys.path``."""
    folder = tmp_path_factory.mktemp("client")
    config = folder / "config.yml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code is checked as generated
    command = [
        sys.executable, "-m", "openapi_python_client", "generate",
        "--path", str(PROJECT_ROOT / "openapi.json"), "--meta", "none",
        "--output-path", str(folder / "library_client"), "--config", str(config),
        "--fail-on-warning",
    ]  # fmt: skip
    ran = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    assert ran.returncode == 0, f"the generator refused the document:\n{ran.stdout}{ran.stderr}"
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [name for name in sys.modules if name.startswith("library_client")]:
        del sys.modules[name]
    sys.modules.pop("tests.integration.client.session", None)


async def test_the_generated_client_creates_reads_lists_and_patches(
    generated: Path, live_server: ServerProcess
) -> None:
    session = importlib.import_module("tests.integration.client.session")
    outcome = await session.run(live_server.base_url, token())

    assert outcome.statuses == {
        "create_author": 201,
        "create_book": 201,
        "get_book": 200,
        "list_books": 200,
        "update_book": 200,
        "update_book_stale": 412,
    }
    book = outcome.book
    assert book.isbn13 == "9780060512750"
    assert [author.name for author in book.authors] == ["Ursula K. Le Guin"]
    assert isinstance(book.created_at, datetime)
    assert book.version == 1
    assert len(outcome.page.items) == 1
    assert outcome.page.next_cursor is not None
    assert outcome.link is not None
    assert 'rel="next"' in outcome.link
    assert (outcome.patched.publication_year, outcome.patched.version) == (1974, 2)
    assert outcome.stale.status == 412
    assert outcome.stale.type_ == "urn:library:problem:precondition-failed"


@pytest.mark.slow
def test_the_generated_client_and_its_use_pass_mypy_strict(generated: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "mypy", "--strict", "--python-version", "3.11",
        "--cache-dir", str(tmp_path / "mypy"), "--config-file", "",
        str(generated / "library_client"), str(SESSION),
    ]  # fmt: skip
    ran = subprocess.run(  # noqa: S603
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
