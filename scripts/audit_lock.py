"""pip-audit of the dependencies pinned in uv.lock, saying plainly what it could not check.

pip-audit reports "No known vulnerabilities found" even when the vulnerability service did not
answer for a package (it skips it); this wrapper counts those and names them, so an audit that
did not happen never reads as a clean one. Exit 1 on any known vulnerability; also exit 1 on
any package left unaudited when AUDIT_STRICT=1.
"""

from __future__ import annotations

import json
import os

# Runs uv and pip-audit with fixed argument lists, never a shell.
import subprocess  # nosec B404
import sys
import tempfile
from pathlib import Path


def main() -> int:
    uv = os.environ.get("UV", "uv")
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        subprocess.run(  # noqa: S603  # nosec B603
            [
                uv,
                "export",
                "--frozen",
                "--format",
                "requirements-txt",
                "--no-emit-project",
                "--all-groups",
                "--quiet",
                "-o",
                str(requirements),
            ],
            check=True,
        )
        audit = subprocess.run(  # noqa: S603  # nosec B603
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--disable-pip",
                "--no-deps",
                "--format",
                "json",
                "--progress-spinner",
                "off",
                "-r",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        report = json.loads(audit.stdout)
    except json.JSONDecodeError:
        print(audit.stderr, file=sys.stderr)
        print("pip-audit: NO AUDIT - pip-audit did not produce a report (see above).")
        return 1
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    audited = len(deps) - len(skipped)
    print(
        f"pip-audit: {len(deps)} locked packages, {audited} audited, "
        f"{len(vulnerable)} with known vulnerabilities, {len(skipped)} NOT audited."
    )
    if skipped:
        print(
            "pip-audit: the vulnerability service gave no answer for "
            f"{len(skipped)} packages (first reason: {skipped[0]['skip_reason']!r}); "
            "they were NOT checked. Re-run where PyPI's JSON API (or OSV: "
            "PIP_AUDIT_VULNERABILITY_SERVICE=osv) is reachable."
        )
    if vulnerable:
        return 1
    if skipped and os.environ.get("AUDIT_STRICT") == "1":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
