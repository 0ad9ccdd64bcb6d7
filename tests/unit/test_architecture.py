"""The import-linter contracts are not decoration: each one fails when its rule is broken.

For every contract we copy ``src/`` aside, plant one import that breaks exactly that rule,
and run ``lint-imports`` on the copy: it must report the contract BROKEN and exit non-zero.
The unmodified tree passes (``make lint`` runs the same contracts on the real code).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

VIOLATIONS = {
    "contexts-independent": (
        "library/books/application/_planted.py",
        "import library.authors.domain.model\n",
    ),
    "context-layers": (
        "library/authors/domain/_planted.py",
        "import library.authors.application.services\n",
    ),
    "changes-layers": (
        "library/changes/application/_planted.py",
        "import library.changes.infrastructure.reader\n",
    ),
    "service-without-tools": (
        "library/bootstrap/_planted.py",
        "import tools.seed\n",
    ),
    "interchange-layers": (
        "library/books/interchange/importer.py",
        "import library.books.interchange.runner\n",
    ),
    "pure-core": ("library/books/domain/_planted.py", "import sqlalchemy\n"),
    "shared-kernel": ("shared/_planted.py", "import library.authors.domain.model\n"),
}


def lint_imports(src: Path, contract: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(  # noqa: S603 - our own venv's executable, fixed arguments
        [
            str(LINT_IMPORTS),
            "--config",
            str(ROOT / "pyproject.toml"),
            "--contract",
            contract,
            "--no-cache",
        ],
        cwd=src.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("pristine") / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def test_the_real_tree_keeps_every_contract(pristine: Path) -> None:
    for contract in VIOLATIONS:
        result = lint_imports(pristine, contract)
        assert result.returncode == 0, result.stdout + result.stderr


# Each plant runs import-linter on a copy of the tree (seconds each): make test runs them,
# make test-quick does not (they check the contracts, which change only with pyproject.toml).
@pytest.mark.slow
@pytest.mark.parametrize("contract", list(VIOLATIONS))
def test_a_planted_violation_breaks_the_contract(contract: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    relative, code = VIOLATIONS[contract]
    (src / relative).write_text(code)
    result = lint_imports(src, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    # The report names the planted module (a layer's own module when the plant replaces it).
    assert relative.removesuffix(".py").replace("/", ".") in result.stdout
