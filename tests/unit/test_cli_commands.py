"""The ``library`` command is one module per command: ``library/cli/<module>.py`` holds a
command's parser and its work, and ``main`` only dispatches."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from library import cli

ROOT = Path(__file__).resolve().parents[2]

# Each command, its module, and the arguments it needs to parse.
COMMANDS = {
    "serve": ("serve", []),
    "migrate": ("migrate", []),
    "dev": ("dev", []),
    "revision": ("revision", ["a message"]),
    "token": ("token", []),
    "import": ("import_catalog", ["goodbooks", "books.csv"]),
    "export": ("export_catalog", []),
    "seed": ("seed", ["--books", "1"]),
}


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    # A command's line (four spaces, then its name), not a wrapped help text.
    lines = [line for line in out.splitlines() if line.startswith("    ")]
    listed = [line.split()[0] for line in lines if line[4:5].isalpha()]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_has_a_module_and_main_dispatches_to_it(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name, arguments = COMMANDS[command]
    module = importlib.import_module(f"library.cli.{module_name}")
    assert (ROOT / "src" / "library" / "cli" / f"{module_name}.py").is_file()
    assert cli.COMMANDS[command] is module
    seen: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(module, "run", record)
    if command in ("import", "export"):  # they exit with their status
        with pytest.raises(SystemExit) as exited:
            cli.main([command, *arguments])
        assert exited.value.code == 0
    else:
        cli.main([command, *arguments])
    assert [args.command for args in seen] == [command]


def test_the_console_script_and_python_m_reach_main() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["library"] == "library.cli:main"
    result = subprocess.run(
        [sys.executable, "-m", "library.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: library ")
