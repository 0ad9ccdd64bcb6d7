"""make bench's report says whether each search stays within its database budget (issue 9)."""

from __future__ import annotations

from typing import Any

from bench import report


def _results(alone_ms: float | None, tps: float) -> dict[str, Any]:
    ceiling: dict[str, Any] = {"tps": tps}
    if alone_ms is not None:
        ceiling["one_client"] = {"p50_ms": alone_ms}
    return {
        "config": {"cpus": 2},
        "scenarios": {
            "search_rare": {
                "title": "Search, rare term",
                "database_budget": {"one_client_p50_ms_max": 5.0, "pgbench_tps_min": 1220.0},
                "pgbench": ceiling,
            },
            "get_book": {"title": "GET one book", "database_budget": None, "pgbench": ceiling},
        },
    }


def test_a_search_within_its_budget_is_met_on_both_bounds() -> None:
    (line,) = report._database_budgets(_results(1.25, 4000.0))
    assert line == (
        "Database budget, Search, rare term: alone 1.25 ms p50 (<= 5 ms met); "
        "pgbench 4,000 tx/s (<= 0.50 CPU ms each) (>= 1,220 met)."
    )


def test_a_search_over_its_budget_is_not_met() -> None:
    (line,) = report._database_budgets(_results(6.0, 900.0))
    assert "alone 6.00 ms p50 (<= 5 ms **not met**)" in line
    assert "pgbench 900 tx/s (<= 2.22 CPU ms each) (>= 1,220 **not met**)" in line


def test_a_run_without_the_one_client_figure_says_so() -> None:
    (line,) = report._database_budgets(_results(None, 4000.0))
    assert "alone: not measured" in line
