"""The README's session, run as a newcomer runs it: the real curl binary against a real server.

The "Try it" block of README.md is taken as it is written and run by bash against ``library
serve`` on a free port and the test database; only the server's address is swapped. ``make -s
token`` answers with a token of the tests' key set (the server verifies those), and ``curl``
goes through a shim that asks the real binary to dump each response's headers, so each step's
status is checked. A README whose commands no longer work fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

from tests.auth import AUTH_SETTINGS, token
from tests.integration.faults.server import PROJECT_ROOT, ServerProcess

README = PROJECT_ROOT / "README.md"
README_ADDRESS = "http://127.0.0.1:8000"

# The session's curl calls, in order: create an author, create a book, read it, PATCH it with
# If-Match, search.
EXPECTED_STATUSES = [201, 201, 200, 200, 200]


def readme_session() -> str:
    """The first bash block under "## Try it"."""
    text = README.read_text()
    section = text.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, 'README.md: no bash block under "## Try it"'
    return match.group(1)


def shim(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


async def test_the_readme_session_creates_patches_searches_and_exports(
    live_server: ServerProcess, app_database_url: str, tmp_path: Path
) -> None:
    session = readme_session()
    assert README_ADDRESS in session, "the session no longer names the address make run serves"
    session = session.replace(README_ADDRESS, live_server.base_url)

    real_curl = shutil.which("curl")
    assert real_curl, "curl is not installed"
    bin_dir, headers = tmp_path / "bin", tmp_path / "headers"
    bin_dir.mkdir()
    headers.mkdir()
    # `make -s token` as the README runs it, answered with a token this server accepts.
    shim(bin_dir / "make", '[ "$*" = "-s token" ] && exec printf "%s\\n" "$README_TOKEN"\nexit 2\n')
    # The real curl, asked to dump each response's headers (numbered in call order).
    shim(
        bin_dir / "curl",
        f'n=$(ls "{headers}" | wc -l)\n'
        f'exec "{real_curl}" -D "{headers}/$(printf %03d "$n")" "$@"\n',
    )
    (tmp_path / ".venv").symlink_to(PROJECT_ROOT / ".venv")  # the README's .venv/bin/library
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "README_TOKEN": token("catalog:write catalog:admin"),
        "DATABASE_URL": app_database_url,
        "LIBRARY_ALEMBIC_CONFIG": str(PROJECT_ROOT / "alembic.ini"),
        "LIBRARY_ENVIRONMENT": "test",
        "LIBRARY_AUTH_JWKS_FILE": str(AUTH_SETTINGS["auth_jwks_file"]),
        "LIBRARY_AUTH_ISSUER": AUTH_SETTINGS["auth_issuer"],
        "LIBRARY_AUTH_AUDIENCE": AUTH_SETTINGS["auth_audience"],
    }
    env.pop("LIBRARY_DATABASE_URL", None)

    bash = shutil.which("bash")
    assert bash, "bash is not installed"
    # The README's own block, run by bash (the server is another process: blocking is fine).
    ran = subprocess.run(  # noqa: S603, ASYNC221
        [bash, "-e", "-u", "-o", "pipefail", "-c", session],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = (
        f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}\nserver:\n{live_server.output()[-3000:]}"
    )
    assert ran.returncode == 0, report

    dumps = sorted(headers.iterdir())
    statuses = [int(dump.read_text().split()[1]) for dump in dumps]
    assert statuses == EXPECTED_STATUSES, report
    # The read shows the ETag the PATCH sends back; the search finds the patched book.
    assert re.search(r'(?im)^etag: "1"\r?$', ran.stdout), report
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    shown = [(book["title"], book["publication_year"], book["version"]) for book in found["items"]]
    assert shown == [("The Dispossessed", 1974, 2)], report

    lines = (tmp_path / "catalog.jsonl").read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [(b["title"], b["authors"], b["isbn13"], b["publication_year"]) for b in exported] == [
        ("The Dispossessed", ["Ursula K. Le Guin"], "9780060512750", 1974)
    ]
