"""The production image installs the runtime dependencies only: no dev, no bench package.

The Dockerfile's ``uv sync`` flags are read from the Dockerfile itself and handed to
``uv export``, so the set checked is the set the image installs (from uv.lock, offline).
The image's own installed distributions are checked too, in tests/containers.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess  # nosec B404 - runs uv, a fixed command
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The flags of `uv sync` that choose dependency groups; `uv export` takes them too.
GROUP_FLAGS = {"--no-dev", "--dev", "--no-default-groups", "--all-groups"}
GROUP_OPTIONS = {"--group", "--no-group", "--only-group"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert match is not None, requirement
        names.add(normalise(match.group()))
    return names


def pyproject() -> dict[str, object]:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def dockerfile_sync_flags() -> list[list[str]]:
    """The group-choosing flags of each `uv sync` in the Dockerfile (continuations joined)."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runs = []
    for line in text.splitlines():
        if "uv sync" not in line or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line[line.index("uv sync") :])
        flags = []
        for i, word in enumerate(words):
            if word in GROUP_FLAGS:
                flags.append(word)
            elif word in GROUP_OPTIONS:
                flags += [word, words[i + 1]]
            elif word.split("=", 1)[0] in GROUP_OPTIONS:
                flags.append(word)
        runs.append(flags)
    return runs


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(PROJECT_ROOT / ".tools/bin/uv")
    assert Path(found).exists(), "uv is needed to export the lock: run `make install`"
    return found


def exported(flags: list[str]) -> set[str]:
    result = subprocess.run(  # noqa: S603 - uv with flags read from our own Dockerfile
        [
            uv(),
            "export",
            "--frozen",
            "--no-hashes",
            "--no-annotate",
            "--no-header",
            "--no-emit-project",
            *flags,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "UV_OFFLINE": "1"},
    )
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    return requirement_names([line.split(";")[0].strip() for line in lines])


def test_the_image_installs_runtime_dependencies_without_dev_or_bench_packages() -> None:
    project = pyproject()
    runtime = requirement_names(project["project"]["dependencies"])  # type: ignore[index]
    groups = project["dependency-groups"]
    tools = requirement_names(groups["dev"]) | requirement_names(groups["bench"])  # type: ignore[index]
    runs = dockerfile_sync_flags()
    assert len(runs) == 2, "the Dockerfile has two `uv sync` steps (dependencies, then project)"
    for flags in runs:
        installed = exported(flags)
        assert runtime <= installed, sorted(runtime - installed)
        shipped = installed & tools
        assert not shipped, f"`uv sync {' '.join(flags)}` ships {sorted(shipped)}"


def test_the_check_sees_a_group_that_ships() -> None:
    # Flags that bring a tools group in (as --no-dev alone did while bench was a default
    # group) are seen: the export the check reads holds that group's packages.
    bench = requirement_names(pyproject()["dependency-groups"]["bench"])  # type: ignore[index]
    assert bench <= exported(["--no-dev", "--group", "bench"])
