"""`library import goodbooks` counts its rows where the server's /metrics finds them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.observability.metrics import Metrics
from tests.integration.books.test_goodbooks_import import QUIRKS, counts, run_import

pytestmark = pytest.mark.usefixtures("clean_database")


def import_rows(folder: Path) -> dict[str, float]:
    """What a server sharing ``folder`` as PROMETHEUS_MULTIPROC_DIR renders."""
    scrape = Metrics(version="v", commit="c", multiprocess_path=str(folder)).render().decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "library_import_rows_total"
    }


async def test_the_import_counts_its_rows_in_the_shared_metrics_folder(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setitem(os.environ, "PROMETHEUS_MULTIPROC_DIR", str(folder))
    report = tmp_path / "report.csv"

    done = await asyncio.to_thread(run_import, database_url, QUIRKS, report)
    assert done.returncode == 0, done.stderr
    summary = counts(done.stdout)
    assert import_rows(folder) == {
        "imported": summary["imported"],
        "rejected": summary["rejected"],
        "present": summary["already present"],
    }

    again = await asyncio.to_thread(run_import, database_url, QUIRKS, report)  # all present now
    assert again.returncode == 0, again.stderr
    rows = import_rows(folder)
    assert rows["present"] == summary["already present"] + counts(again.stdout)["already present"]
    assert rows["imported"] == summary["imported"]
