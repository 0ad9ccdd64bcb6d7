"""The database ceiling: pgbench sending the captured statements, with the values inlined."""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.values import load, sql_literal

MAX_SCRIPTS = 20
_PLACEHOLDER = re.compile(r"\$(\d+)")
# POST values pgbench makes itself: a fresh id, a unique title and ISBN (from the transaction id).
_POST_VARIABLES = {
    "new_id": ":new_id",
    "title": ":title",
    "isbn": ":isbn",
    "now": "now()",
}
_POST_SETUP = (
    "SELECT gen_random_uuid() AS new_id, 'bench-post pg-' || txid_current() AS title, "
    "'9790' || lpad((txid_current() % 1000000000)::text, 9, '0') AS isbn \\gset"
)


def _inline(sql: str, params: Any, render: Any) -> str:
    values = list(params)
    return _PLACEHOLDER.sub(lambda m: render(values[int(m.group(1)) - 1]), sql)


def _statements(sql: str, params: Any, many: bool, render: Any) -> list[str]:
    rows = params if many else [params]
    # pgbench reads one statement per line unless it ends with a semicolon: join the lines.
    return [" ".join(_inline(sql, row, render).split()) + ";" for row in rows]


def read_scripts(scenario: dict[str, Any]) -> list[str]:
    """One pgbench script per captured request (at most MAX_SCRIPTS), values inlined."""
    scripts = []
    for request in scenario["requests"][:MAX_SCRIPTS]:
        lines = []
        for s in request["statements"]:
            lines += _statements(s["sql"], load(s["params"]), s["many"], sql_literal)
        scripts.append("\n".join(lines) + "\n")
    return scripts


def post_script(scenario: dict[str, Any]) -> str:
    """The POST statements; new ids, titles and ISBNs come from the database per transaction."""
    request = scenario["requests"][0]
    body = request["body"]
    fixed = {
        "year": body["publication_year"],
        "language": body["language"],
        **{f"author:{i}": a for i, a in enumerate(body["author_ids"])},
    }

    def render(value: Any) -> str:
        if isinstance(value, dict) and "role" in value:
            role = value["role"]
            return _POST_VARIABLES.get(role) or sql_literal(fixed[role])
        if isinstance(value, list):  # an array parameter (the credits): its elements may be roles
            return "ARRAY[" + ", ".join(render(v) for v in value) + "]"
        return sql_literal(load(value))

    lines = []
    open_transaction = None
    for s in request["statements"]:
        transaction = s["transaction"] if s["committed"] else None
        if open_transaction is not None and transaction != open_transaction:
            lines.append("COMMIT;")
        if transaction is not None and transaction != open_transaction:
            lines += ["BEGIN;", _POST_SETUP]
        open_transaction = transaction
        lines += _statements(s["sql"], s["params"], s["many"], render)
    if open_transaction is not None:
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def run(
    dsn_args: list[str],
    scripts: list[str],
    clients: int,
    seconds: int,
    workdir: Path,
    *,
    protocol: str = "prepared",
) -> dict[str, Any]:
    """Run pgbench on ``scripts`` (equal weights); transactions per second and latencies.

    ``prepared`` (the ceiling): each statement is planned once per connection, its values
    inlined. ``simple``: parsed and planned on every execution, as the app's searches are
    (migration 0006 keeps them on custom plans), so its latency is a statement's whole cost in
    the database.
    """
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        threads = str(min(2, clients))
        args = ["pgbench", "-n", "-M", protocol, "-c", str(clients), "-j", threads]
        args += ["-T", str(seconds), "-l", "--log-prefix", f"{tmp}/log"]
        for index, script in enumerate(scripts):
            path = Path(tmp, f"script{index}.sql")
            path.write_text(script)
            args += ["-f", f"{path}@1"]
        done = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            [*args, *dsn_args], capture_output=True, text=True, check=False, timeout=seconds + 60
        )
        if done.returncode != 0 and "tps" not in done.stdout:
            return {"error": (done.stderr or done.stdout)[-500:]}
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        latencies = sorted(
            int(line.split()[2])
            for log in Path(tmp).glob("log*")
            for line in log.read_text().splitlines()
            if line.strip()
        )
    if not latencies:
        return {"error": (done.stderr or done.stdout)[-500:]}
    return {
        "tps": float(tps.group(1)) if tps else len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] / 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000,
        "mean_ms": statistics.fmean(latencies) / 1000,
        "transactions": len(latencies),
        "failed": int(failed.group(1)) if failed else 0,
        "errors": done.stderr[-300:] if done.returncode != 0 else "",
    }
