"""An independent schemathesis run against a live server: every phase, every check, a fixed seed.

    python scripts/fuzz_api.py --database-url postgresql://.../scratch [--seed N] [--max-examples N]

It migrates the database (which it fills with generated rows: give it a scratch one), serves the
app with ``library serve`` on a free port, verifying tokens of a key pair made for the run, and
runs the schemathesis CLI as anyone would (``schemathesis run <url>/openapi.json --checks all
--phases examples,coverage,fuzzing,stateful --seed N``) with a token holding every scope. Then
it reads the run's JSON report and sorts what the checks found: a schema-valid request the
service refused is allowed only for what JSON Schema cannot express (``ALLOWED_REFUSALS``, each
recognised by the problem the service answered); anything else fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket

# Runs our own interpreter's modules with fixed argument lists, never a shell.
import subprocess  # nosec B404
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tools import devauth  # noqa: E402

SEED = 20261202
MAX_EXAMPLES = 25
PHASES = "examples,coverage,fuzzing,stateful"
ISSUER, AUDIENCE = "https://fuzz.invalid/", "library-fuzz"

PROBLEM = "urn:library:problem:"
# Refusals of schema-valid requests that the document cannot prevent, recognised by the problem
# the service answered (docs/api.md lists them). Anything else fails the run.
ALLOWED_REFUSALS: Mapping[tuple[int, str], str] = {
    (422, f"{PROBLEM}unknown-authors"): "author ids no author has",
    (422, f"{PROBLEM}invalid-cursor"): "a cursor the service never issued",
    (412, f"{PROBLEM}precondition-failed"): "an If-Match naming another version",
    (422, f"{PROBLEM}idempotency-key-reused"): "an Idempotency-Key sent before with another body",
    # The header's schema has the pattern of a WAL position, but schemathesis's coverage phase
    # sends "0" for it all the same (a limitation of the tool, not of the document).
    (400, f"{PROBLEM}invalid-commit-lsn"): "a Commit-LSN that is not a WAL position",
}
# A 422 validation-error is allowed when every error it lists is one of these: (field, words
# of its message).
ALLOWED_FIELD_RULES: Mapping[tuple[str, str], str] = {
    ("isbn", "is not a valid ISBN"): "an ISBN whose check digit is wrong",
    ("language", "is not an ISO 639 / BCP 47 language code"): "a language tag no registry has",
    ("birth_year", "must be between"): "a year after this one",
    ("death_year", "must be between"): "a year after this one",
    ("publication_year", "must be between"): "a year after next year",
    ("death_year", "must not be before birth_year"): "a death before the birth",
    ("year_to", "must not be before year_from"): "year_from after year_to",
    ("sort", "needs a search (q)"): "sort=relevance without q",
    ("start", "without a cursor"): "start=latest with a cursor",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start (status {process.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as answer:  # noqa: S310  # nosec B310
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def phases_run(events: Path) -> list[str]:
    """The test phases the run went through (whatever they found)."""
    with events.open() as lines:
        finished = [json.loads(line).get("PhaseFinished") for line in lines]
    return [p["phase"]["name"] for p in finished if p and p["phase"]["name"] in PHASES.split(",")]


def failed_checks(events: Path) -> Iterator[dict[str, Any]]:
    """Each failed check of the run (its NDJSON events), with the request and the response."""
    with events.open() as lines:
        for line in lines:
            event = json.loads(line)
            scenario = event.get("ScenarioFinished")
            if not scenario:
                continue
            recorder = scenario["recorder"]
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    if check["status"] not in ("failure", "error"):
                        continue
                    interaction = recorder.get("interactions", {}).get(case_id) or {}
                    response = interaction.get("response") or {}
                    content = response.get("content") or {}
                    body = base64.b64decode(content.get("$base64", "")) if content else b""
                    case = (recorder.get("cases") or {}).get(case_id, {}).get("value", {})
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    yield {
                        "phase": scenario["phase"],
                        "check": check["name"],
                        "title": failure.get("title", ""),
                        "operation": recorder["label"],
                        "request": f"{case.get('method')} {case.get('path')} "
                        f"query={case.get('query')} headers={case.get('headers')} "
                        f"body={case.get('body')!r}",
                        "status": response.get("status_code"),
                        "body": body.decode(errors="replace"),
                    }


def allowed_reason(failure: Mapping[str, Any]) -> str | None:
    """Why the service may answer so although the check failed, or None."""
    try:
        problem = json.loads(failure["body"] or "{}")
    except ValueError:
        return None
    if not isinstance(problem, dict):
        return None
    status, kind = int(failure["status"] or 0), str(problem.get("type"))
    if failure["check"] == "missing_required_header":
        if (status, kind) == (428, f"{PROBLEM}precondition-required"):
            return "a missing If-Match is 428 Precondition Required (RFC 6585)"
        return None
    if failure["check"] != "positive_data_acceptance":
        return None
    if (status, kind) in ALLOWED_REFUSALS:
        return ALLOWED_REFUSALS[(status, kind)]
    if (status, kind) != (422, f"{PROBLEM}validation-error"):
        return None
    reasons = set()
    for error in problem.get("errors", []):
        field = str(error.get("loc", [""])[-1])
        message = str(error.get("msg", ""))
        reason = next(
            (why for (name, words), why in ALLOWED_FIELD_RULES.items()
             if name == field and words in message),
            None,
        )  # fmt: skip
        if reason is None:
            return None
        reasons.add(reason)
    return "; ".join(sorted(reasons)) or None


def classify(events: Path) -> tuple[Counter[str], list[str]]:
    """The allowed failures by reason, and the others as text."""
    allowed: Counter[str] = Counter()
    unexpected: list[str] = []
    for failure in failed_checks(events):
        reason = allowed_reason(failure)
        if reason is None:
            unexpected.append(json.dumps(failure, ensure_ascii=False)[:2000])
        else:
            allowed[reason] += 1
    return allowed, unexpected


def run_schemathesis(database_url: str, seed: int, max_examples: int, report_dir: Path) -> int:
    """Serve the app on ``database_url`` and run the schemathesis CLI against it; its status."""
    work = Path(tempfile.mkdtemp(prefix="library-fuzz-"))
    key = devauth.new_key_pair(work / "keys")
    token = key.sign(
        "catalog:read catalog:write catalog:admin", sub="fuzzer", ttl=6 * 3600,
        issuer=ISSUER, audience=AUDIENCE,
    )  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LIBRARY_DATABASE_URL": database_url,
        "LIBRARY_ALEMBIC_CONFIG": str(ROOT / "alembic.ini"),
        "LIBRARY_HOST": "127.0.0.1",
        "LIBRARY_PORT": str(port),
        "LIBRARY_WORKERS": "1",
        "LIBRARY_ENVIRONMENT": "test",
        "LIBRARY_LOG_FORMAT": "json",
        "LIBRARY_LOG_LEVEL": "WARNING",
        "LIBRARY_DB_POOL_SIZE": "2",
        "LIBRARY_DB_READ_POOL_SIZE": "2",
        "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
        "LIBRARY_AUTH_ISSUER": ISSUER,
        "LIBRARY_AUTH_AUDIENCE": AUDIENCE,
        "LIBRARY_RATE_LIMIT_ENABLED": "false",
    }
    env.pop("DATABASE_URL", None)
    library = [sys.executable, "-m", "library.cli"]
    subprocess.run([*library, "migrate"], env=env, cwd=ROOT, check=True)  # noqa: S603  # nosec B603
    with (report_dir / "server.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  # nosec B603
            [*library, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            wait_ready(url, server)
            command = [
                sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                "--checks", "all", "--phases", PHASES, "--mode", "all",
                "--seed", str(seed), "--max-examples", str(max_examples),
                "--continue-on-failure", "--workers", "1",
                "--header", f"Authorization: Bearer {token}",
                "--report", "ndjson", "--report-ndjson-path", str(report_dir / "events.ndjson"),
                "--no-color",
            ]  # fmt: skip
            return subprocess.run(command, cwd=work, check=False).returncode  # noqa: S603  # nosec B603
        finally:
            server.terminate()
            server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES)
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument(
        "--classify", type=Path, default=None, help="only sort the failures of this events.ndjson"
    )
    args = parser.parse_args(argv)
    status = 0
    if args.classify is not None:
        events = args.classify
    else:
        if not args.database_url:
            parser.error("give --database-url (or DATABASE_URL): a scratch database it may fill")
        report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="library-fuzz-report-"))
        report_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        status = run_schemathesis(args.database_url, args.seed, args.max_examples, report_dir)
        events = report_dir / "events.ndjson"
        print(f"\nschemathesis exit {status} in {time.monotonic() - started:.0f} s, "
              f"seed {args.seed}, events in {events}")  # fmt: skip

    allowed, unexpected = classify(events)
    ran = phases_run(events)
    print(f"phases run: {', '.join(ran)}")
    for reason, count in sorted(allowed.items()):
        print(f"  allowed: {reason}: {count}")
    for line in unexpected:
        print(f"  UNEXPECTED: {line}")
    if unexpected:
        print(f"{len(unexpected)} unexpected failure(s)")
        return 1
    if status not in (0, 1) or ran != PHASES.split(","):
        print("schemathesis did not complete its run")
        return 1
    print("no unexpected failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
