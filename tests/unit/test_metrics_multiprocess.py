"""Several worker processes, one PROMETHEUS_MULTIPROC_DIR: /metrics counts them all.

Each process here is the real app (no database needed for ``/health/live``), as a uvicorn worker
would build it; the processes share nothing but the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared.observability.metrics import Metrics

WORKER = """
import asyncio, sys
import httpx
from library.bootstrap.app import create_app
from shared.settings import Settings
from tests.auth import AUTH_SETTINGS

requests = int(sys.argv[1])
app = create_app(
    Settings(
        database_url="postgresql://nobody@127.0.0.1:9/none", log_level="ERROR", **AUTH_SETTINGS
    )
)

async def main() -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        for _ in range(requests):
            assert (await client.get("/health/live")).status_code == 200

asyncio.run(main())
app.state.container.observability().stop()  # what the lifespan does as a worker stops
"""


def _worker(folder: Path, requests: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return subprocess.Popen(  # noqa: S603 (our interpreter, our script)
        [sys.executable, "-c", WORKER, str(requests)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return out


def test_two_processes_writing_to_one_folder_are_counted_together(tmp_path: Path) -> None:
    first, second = _worker(tmp_path, 20), _worker(tmp_path, 30)  # at the same time
    _finish(first)
    _finish(second)

    # What any worker's /metrics renders: the folder's files, whichever process wrote them.
    scrape = Metrics(version="v", commit="c", multiprocess_path=str(tmp_path)).render().decode()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    live = (
        "http_server_request_duration_seconds_count",
        (
            ("http_request_method", "GET"),
            ("http_response_status_code", "200"),
            ("http_route", "/health/live"),
        ),
    )
    assert samples[live] == 50
    # Gauges of processes that stopped are gone with them.
    assert not [name for name, _ in samples if name == "http_server_active_requests"]
    builds = [v for (name, _), v in samples.items() if name == "library_build_info"]
    assert builds == [1]
