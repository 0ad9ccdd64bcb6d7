"""Builds of the same code served side by side, in interleaved rounds: app against app.

Each side is one ``library serve`` of this checkout with an environment of its own (metrics
on or off, the outbox on or off, ...). wrk drives each server in turn, the sides' order
rotating every round (whichever runs first in a round was seen to measure a few percent worse,
whatever its code); the figure of a side is the median over the rounds of its req/s over the
reference side's in the same round. Used by `make bench-observability` and `make bench-outbox`,
with bench/run.py's servers and driver and bench/workload.py's scenarios.
"""

from __future__ import annotations

import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import workload
from bench.run import Config, Driver, Server, _git_commit


@dataclass(frozen=True, slots=True)
class Side:
    """One server: a name and the variables that set it apart from the others."""

    name: str
    env: dict[str, str]
    described: dict[str, Any] = field(default_factory=dict)  # what the results say of it


def compare(
    cfg: Config,
    run_dir: Path,
    dsn: str,
    scenarios: list[workload.Scenario],
    sides: list[Side],
    *,
    target: float,
    ready_path: str = "/health/ready",
) -> dict[str, Any]:
    """Serve every side, measure each scenario in ``cfg.rounds`` interleaved rounds; the
    results: config, per-scenario rounds and per-side medians (the first side is the
    reference every ratio is taken against)."""
    reference = sides[0].name
    library = str(Path(sys.executable).with_name("library"))
    servers = {
        side.name: Server(
            side.name,
            [library, "serve"],
            side.env | {"LIBRARY_PORT": str(cfg.app_port + i)},
            run_dir / f"app-{side.name}.log",
            cfg.app_port + i,
        )
        for i, side in enumerate(sides)
    }
    results: dict[str, Any] = {
        "config": {
            "rounds": cfg.rounds,
            "duration_s": cfg.duration,
            "warmup_s": cfg.warmup,
            "connections": cfg.connections,
            "wrk_threads": cfg.threads,
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "commit": _git_commit(),
            "reference": reference,
            "variants": {side.name: side.described for side in sides},
            "target": target,
        },
        "scenarios": {},
    }
    driver = Driver(cfg, run_dir, dsn)
    try:
        for server in servers.values():
            server.wait_until_serving(ready_path, timeout=300)  # several start at once
        for scenario in scenarios:
            print(f"\n{scenario.title} ({scenario.note})", flush=True)
            for server in servers.values():
                warm = driver.measure(server, scenario, cfg.warmup)
                print(f"  warm-up {server.name:10} {warm['rps']:8.0f} req/s", flush=True)
            rounds: list[dict[str, Any]] = []
            for index in range(cfg.rounds):
                order = sides[index % len(sides) :] + sides[: index % len(sides)]
                measured = {
                    s.name: driver.measure(servers[s.name], scenario, cfg.duration) for s in order
                }
                base = measured[reference]["rps"]
                ratios = {n: (m["rps"] / base if base else 0.0) for n, m in measured.items()}
                rounds.append(
                    {"order": [s.name for s in order], "runs": measured, "ratios": ratios}
                )
                print(
                    f"  round {index + 1}: "
                    + ", ".join(
                        f"{s.name} {measured[s.name]['rps']:.0f}/s ({ratios[s.name]:.3f})"
                        for s in sides
                    ),
                    flush=True,
                )
            results["scenarios"][scenario.name] = {
                "title": scenario.title,
                "rounds": rounds,
                "variants": {s.name: _summary(rounds, s.name) for s in sides},
            }
    finally:
        for server in servers.values():
            server.stop()
    results["load_average_at_end"] = os.getloadavg()
    return results


def _summary(rounds: list[dict[str, Any]], name: str) -> dict[str, Any]:
    runs = [r["runs"][name] for r in rounds]
    ratios = [r["ratios"][name] for r in rounds]
    return {
        "rps_median": statistics.median(r["rps"] for r in runs),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
        "cpu_ms_per_request_median": statistics.median(r["cpu_ms_per_request"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def table(results: dict[str, Any], heading: str) -> str:
    """The results as Markdown: ``heading`` (what was served), then a row per scenario and side."""
    cfg = results["config"]
    reference = cfg["reference"]
    lines = [
        f"{heading}; {cfg['rounds']} rounds of {cfg['duration_s']} s per variant, interleaved "
        f"(order rotating); wrk {cfg['wrk_threads']} thread(s), {cfg['connections']} "
        f"connections; {cfg['cpus']} CPUs shared (load average "
        f"{cfg['load_average_at_start'][0]:.1f} at start, {results['load_average_at_end'][0]:.1f} "
        f"at end); commit {cfg['commit']}.",
        "",
        f"| Scenario | Variant | req/s | vs {reference}: median (rounds) "
        "| p50 / p99 ms | CPU ms/req |",
        "| --- | --- | ---: | --- | --- | ---: |",
    ]
    for s in results["scenarios"].values():
        for name, v in s["variants"].items():
            rounds = ", ".join(f"{r:.2f}" for r in v["ratios"])
            verdict = ""
            if name != reference:
                verdict = " met" if v["ratio_median"] >= cfg["target"] else " **not met**"
            lines.append(
                f"| {s['title']} | {name} | {v['rps_median']:,.0f} "
                f"| **{v['ratio_median']:.3f}** ({rounds}){verdict} "
                f"| {v['p50_ms_median']:.1f} / {v['p99_ms_median']:.1f} "
                f"| {v['cpu_ms_per_request_median']:.3f} |"
            )
    lines.append("")
    lines.append(
        f"Target: each variant >= {cfg['target']}x '{reference}' (median ratio of the rounds)."
    )
    return "\n".join(lines)
