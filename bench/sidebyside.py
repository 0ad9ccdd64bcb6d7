"""Builds of the same code served side by side, in interleaved rounds: app against app.

Each side is one ``library serve`` of this checkout with an environment of its own (metrics
on or off, the outbox on or off, ...). wrk drives each server in turn, the sides' order
rotating every round (whichever runs first in a round was seen to measure a few percent worse,
whatever its code); the figure of a side is the median over the rounds of its req/s over the
reference side's at the same time: interpolated between the reference's runs before and after
it, as the machine's own speed drifts over minutes (see :func:`_bracketed_ratios`).

Before each measurement every server is let settle: the one measured last may still be
working off what its run left (a tracing side exports its queued spans for seconds after wrk
stops; the outbox's relay delivers its events), and that work ran during the next side's run.
Every tracing side of `make bench-observability` came right after another in the rotation,
and the 1% sampled one read 0.73 to 1.11 of ``off`` from one round to the next. Used by `make
bench-observability` and `make bench-outbox`, with bench/run.py's servers and driver and
bench/workload.py's scenarios.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import workload
from bench.run import Config, Driver, Server, _git_commit

# A server is settled when it used less than this share of one CPU over a window.
SETTLED_CPU_SHARE = 0.02
SETTLE_WINDOW_S = 0.5
SETTLE_TIMEOUT_S = 30.0


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
    quiet: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Serve every side, measure each scenario in ``cfg.rounds`` interleaved rounds; the
    results: config, per-scenario rounds and per-side medians (the first side is the
    reference every ratio is taken against). ``quiet``: what must hold too before each
    measurement, on top of every server being idle (:func:`wait_until_idle`)."""
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
            timeline: list[tuple[float, int, str]] = []  # (mid-run time, round, side)
            for index in range(cfg.rounds):
                order = sides[index % len(sides) :] + sides[: index % len(sides)]
                measured = {}
                settled = {}
                for s in order:
                    settled[s.name] = wait_until_idle(list(servers.values()), quiet)
                    begun = time.monotonic()
                    measured[s.name] = driver.measure(servers[s.name], scenario, cfg.duration)
                    timeline.append(((begun + time.monotonic()) / 2, index, s.name))
                base = measured[reference]["rps"]
                ratios = {n: (m["rps"] / base if base else 0.0) for n, m in measured.items()}
                rounds.append(
                    {
                        "order": [s.name for s in order],
                        "runs": measured,
                        "ratios_same_round": ratios,
                        "settle_s": settled,  # the wait for every server to go idle before it
                    }
                )
                print(
                    f"  round {index + 1}: "
                    + ", ".join(
                        f"{s.name} {measured[s.name]['rps']:.0f}/s ({ratios[s.name]:.3f})"
                        for s in sides
                    ),
                    flush=True,
                )
            _bracketed_ratios(rounds, timeline, reference)
            print(
                "  against the reference interpolated at each run's time: "
                + ", ".join(
                    f"{s.name} " + " ".join(f"{r['ratios'][s.name]:.2f}" for r in rounds)
                    for s in sides[1:]
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


def _cpu_seconds(server: Server) -> float:
    """The CPU time the server's process (one worker: LIBRARY_WORKERS=1) has used so far."""
    times = server.ps.cpu_times()
    return float(times.user + times.system)


def wait_until_idle(servers: list[Server], quiet: Callable[[], bool] | None = None) -> float:
    """Wait until every server is idle (under :data:`SETTLED_CPU_SHARE` of a CPU over
    :data:`SETTLE_WINDOW_S`) and ``quiet()`` holds, at most :data:`SETTLE_TIMEOUT_S`; the
    seconds waited. (The driver's own ``settle``, after each run, waits for the database's
    queries; this waits for the servers' processes, e.g. an export after the run.)"""
    started = time.monotonic()
    before = [_cpu_seconds(server) for server in servers]
    while True:
        time.sleep(SETTLE_WINDOW_S)
        after = [_cpu_seconds(server) for server in servers]
        busy = max(b - a for a, b in zip(before, after, strict=True))
        waited = time.monotonic() - started
        idle = busy < SETTLED_CPU_SHARE * SETTLE_WINDOW_S and (quiet is None or quiet())
        if idle or waited >= SETTLE_TIMEOUT_S:
            return round(waited, 2)
        before = after


def _bracketed_ratios(
    rounds: list[dict[str, Any]], timeline: list[tuple[float, int, str]], reference: str
) -> None:
    """Each run's ratio (``ratios`` of its round) against the reference's req/s interpolated at
    the run's time, between the reference's runs just before and after it (the nearest one at
    either end). The machine's own speed drifts by more than the differences measured here
    (the reference alone went from 3,400 to 5,500 req/s within minutes, its CPU per request
    with it), and within a round the reference's run may be minutes away from the other's."""
    marks: list[tuple[float, float]] = [
        (t, float(rounds[i]["runs"][name]["rps"])) for t, i, name in timeline if name == reference
    ]

    def reference_at(t: float) -> float:
        before = [m for m in marks if m[0] <= t]
        after = [m for m in marks if m[0] >= t]
        if not before:
            return after[0][1]
        if not after:
            return before[-1][1]
        (t0, r0), (t1, r1) = before[-1], after[0]
        return r0 if t1 == t0 else r0 + (r1 - r0) * (t - t0) / (t1 - t0)

    for r in rounds:
        r["ratios"] = {}
    for t, i, name in timeline:
        base = reference_at(t)
        rps = rounds[i]["runs"][name]["rps"]
        rounds[i]["ratios"][name] = rps / base if base else 0.0


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
