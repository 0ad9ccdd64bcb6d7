"""schemathesis run independently against a live server, as ``make fuzz-api`` runs it.

``scripts/fuzz_api.py`` serves the app (``library serve``) on the test database and runs the
schemathesis CLI against its ``/openapi.json``: every phase (examples, coverage, fuzzing, and the
stateful phase chaining create -> read -> update -> delete through the links it infers), ``--checks
all``, valid and invalid data, a fixed seed and 25 examples per operation. A failed check passes
only when it is one of the refusals JSON Schema cannot express (an ISBN's check digit, author ids
that do not exist, a cursor the service did not issue, an If-Match naming another version, a
language tag no registry has, ...: the script's ``ALLOWED_REFUSALS`` and ``ALLOWED_FIELD_RULES``,
listed in docs/api.md), recognised by the problem the service answered. Anything else (a 5xx,
a response the document does not describe, a schema-valid request refused for another reason,
a schema-invalid one accepted) fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.faults.server import PROJECT_ROOT

pytestmark = pytest.mark.fuzz


def test_schemathesis_finds_nothing_the_document_could_have_said(
    database_url: str, clean_database: None, tmp_path: Path
) -> None:
    ran = subprocess.run(  # noqa: S603 - our interpreter, our script
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "fuzz_api.py"),
            "--database-url",
            database_url,
            "--report-dir",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    summary = ran.stdout[ran.stdout.rfind("schemathesis exit") :]
    assert ran.returncode == 0, summary + ran.stderr[-3000:]
    assert "phases run: examples, coverage, fuzzing, stateful" in summary
    assert "no unexpected failure" in summary
