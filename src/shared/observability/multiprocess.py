"""The folder of prometheus-client's multiprocess mode, made ready before the workers start."""

from __future__ import annotations

import os
from pathlib import Path


def prepare_multiprocess_dir() -> Path | None:
    """Create ``PROMETHEUS_MULTIPROC_DIR`` if needed and empty it (None: the mode is off).

    Called once by ``library serve`` before any worker starts, as prometheus-client asks: files
    left by an earlier run would otherwise be summed with this run's (their counters are reset
    by a restart anyway, and their gauges describe processes that are gone).
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path
