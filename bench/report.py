"""The table (Markdown, printed and saved) and the chart (PNG) of one run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_READ_STATEMENTS = 3
# Below this many requests in a round (either side), the round's ratio is mostly noise.
FEW_REQUESTS = 100


# The order of the two sides within each round (run.py; "fixed" before it was recorded).
_ORDERS = {
    "fixed": "baseline, app, baseline, app, ...",
    "counterbalanced": "baseline then app, app then baseline, ... by round",
}


def table(results: dict[str, Any]) -> str:
    """One row per scenario: medians over the rounds, the ratio per round and its median."""
    cfg = results["config"]
    lines = [
        f"{cfg['books']:,} books; {cfg['rounds']} rounds of {cfg['duration_s']} s per side "
        f"({_ORDERS[cfg.get('order', 'fixed')]}) after {cfg['warmup_s']} s warm-ups; wrk "
        f"{cfg['wrk_threads']} thread(s), {cfg['connections']} connections; pool "
        f"{cfg['pool'][0]}+{cfg['pool'][1] - cfg['pool'][0]}; {cfg['cpus']} CPUs shared "
        f"(load average {cfg['load_average_at_start'][0]:.1f} at start); commit {cfg['commit']}.",
        "",
        "| Scenario | Baseline req/s | App req/s | App/baseline: median (rounds) | Target "
        "| p50 / p99 ms app (baseline) | CPU ms/req app (baseline) | SQL/req (tx) "
        "| Peak RSS MB app (baseline) | pgbench tx/s |",
        "| --- | ---: | ---: | --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for s in results["scenarios"].values():
        app, base = s["app"], s["baseline"]
        ratio = s["ratio_median"]
        met = "met" if ratio >= s["target"] else "**not met**"
        rounds = ", ".join(f"{r:.2f}" for r in s["ratios"])
        ceiling = s.get("pgbench") or {}
        errors = app["errors"] + base["errors"]
        fewest = min(r[side]["requests"] for r in s["rounds"] for side in ("app", "baseline"))
        title = s["title"] + (f" ({errors} errors)" if errors else "")
        if fewest < FEW_REQUESTS:
            title += f" [few: {fewest} requests in a round]"
        lines.append(
            f"| {title} | {base['rps']:,.0f} | {app['rps']:,.0f} | **{ratio:.2f}** ({rounds}) "
            f"| >= {s['target']} {met} "
            f"| {app['p50_ms']:.1f} / {app['p99_ms']:.1f} ({base['p50_ms']:.1f} / "
            f"{base['p99_ms']:.1f}) "
            f"| {app['cpu_ms_per_request']:.2f} ({base['cpu_ms_per_request']:.2f}) "
            f"| {s['statements_per_request']:g} ({s['transactions_per_request']:g}) "
            f"| {app['peak_rss_mb']:.0f} ({base['peak_rss_mb']:.0f}) "
            f"| {ceiling['tps']:,.0f} |"
            if "tps" in ceiling
            else f"| {title} | {base['rps']:,.0f} | {app['rps']:,.0f} | **{ratio:.2f}** "
            f"({rounds}) | >= {s['target']} {met} "
            f"| {app['p50_ms']:.1f} / {app['p99_ms']:.1f} ({base['p50_ms']:.1f} / "
            f"{base['p99_ms']:.1f}) "
            f"| {app['cpu_ms_per_request']:.2f} ({base['cpu_ms_per_request']:.2f}) "
            f"| {s['statements_per_request']:g} ({s['transactions_per_request']:g}) "
            f"| {app['peak_rss_mb']:.0f} ({base['peak_rss_mb']:.0f}) | n/a |"
        )
    reads = [s for s in results["scenarios"].values() if not s["title"].startswith("POST")]
    worst = max((s["statements_max"] for s in reads), default=0)
    lines += [
        "",
        f"Most SQL statements for a read: {worst} (target <= {MAX_READ_STATEMENTS}: "
        f"{'met' if worst <= MAX_READ_STATEMENTS else 'not met'}). SQL/req counts the "
        "statements the app sent (transactions it opened in brackets); the baseline sends the "
        "same statements, reads without a transaction.",
    ]
    lines.append(
        f"[few]: a round served fewer than {FEW_REQUESTS} requests (the database takes seconds "
        "per query): its ratio is noise. Errors are non-2xx answers and wrk timeouts (10 s)."
    )
    lines += _database_budgets(results)
    deep, first = results["scenarios"].get("deep_page"), results["scenarios"].get("list_50")
    if deep and first:
        cost = first["app"]["rps"] / deep["app"]["rps"] if deep["app"]["rps"] else 0.0
        lines.append(
            f"Deep page cost: {cost:.2f}x the first page (app req/s, first / deep; target <= 1.5)."
        )
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Requests per second per scenario (pgbench, baseline, app) and the ratio per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(results["scenarios"].values())
    names = [s["title"] for s in scenarios]
    x = list(range(len(scenarios)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8.5), sharex=True)
    width = 0.27
    series = [
        ("pgbench (database ceiling)", [(s.get("pgbench") or {}).get("tps", 0) for s in scenarios]),
        ("baseline (Starlette + asyncpg)", [s["baseline"]["rps"] for s in scenarios]),
        ("app", [s["app"]["rps"] for s in scenarios]),
    ]
    for offset, (label, values) in zip((-width, 0, width), series, strict=True):
        top.bar([i + offset for i in x], values, width, label=label)
    top.set_yscale("log")
    top.set_ylabel("requests (transactions) per second, median")
    top.legend()
    top.set_title(
        f"library: {results['config']['books']:,} books, {results['started']} "
        f"(commit {results['config']['commit']})"
    )
    for i, s in enumerate(scenarios):
        bottom.scatter([i] * len(s["ratios"]), s["ratios"], color="grey", s=14, zorder=3)
        bottom.bar(i, s["ratio_median"], 0.5, color="tab:green", alpha=0.6)
        bottom.hlines(s["target"], i - 0.3, i + 0.3, color="tab:red", linewidth=2)
    bottom.set_ylabel("app / baseline (bar: median, dots: rounds, red: target)")
    bottom.set_ylim(0, max(1.1, *[max(s["ratios"]) * 1.1 for s in scenarios]))
    bottom.set_xticks(x, names, rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _database_budgets(results: dict[str, Any]) -> list[str]:
    """One line per scenario with a database budget: the statement alone (one client, planned
    each time: its whole cost in the database) and pgbench's tx/s, each against its bound."""
    cpus = results["config"].get("cpus") or 1
    lines = []
    for s in results["scenarios"].values():
        budget = s.get("database_budget")
        if not budget:
            continue
        ceiling = s.get("pgbench") or {}
        alone = ceiling.get("one_client") or {}
        parts = []
        if "p50_ms" in alone:
            bound = budget["one_client_p50_ms_max"]
            met = "met" if alone["p50_ms"] <= bound else "**not met**"
            parts.append(f"alone {alone['p50_ms']:.2f} ms p50 (<= {bound:g} ms {met})")
        else:
            parts.append("alone: not measured")
        if "tps" in ceiling:
            tps = ceiling["tps"]
            # Every CPU busy: no statement took more than this much CPU time, pgbench included.
            text = f"pgbench {tps:,.0f} tx/s (<= {1000 * cpus / tps:.2f} CPU ms each)"
            floor = budget.get("pgbench_tps_min")
            if floor is not None:
                text += f" (>= {floor:,.0f} {'met' if tps >= floor else '**not met**'})"
            parts.append(text)
        lines.append(f"Database budget, {s['title']}: " + "; ".join(parts) + ".")
    return lines
