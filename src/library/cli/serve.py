"""``library serve``: serve the API (production: DATABASE_URL must be set)."""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.settings import POOL_SIZE_SETTINGS, Settings

# src/, which the development server watches with --reload.
SOURCE_DIR = Path(__file__).resolve().parents[2]
# The app factory, as an import string: each worker (or reloaded process) builds its own app.
APP = "library.bootstrap.app:create_app"
# The same for the workers of a supervisor: each first ties its life to the supervisor's.
SUPERVISED_APP = "library.cli.serve:supervised_app"
_SUPERVISOR_PID = "LIBRARY_SUPERVISOR_PID"  # set for the workers, read by supervised_app
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def add_parser(commands: Any) -> None:
    serve_parser = commands.add_parser(
        "serve", help="serve the API (production: DATABASE_URL must be set)"
    )
    serve_parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default LIBRARY_WORKERS, else one per CPU in production, "
        "1 elsewhere)",
    )


def run(args: argparse.Namespace) -> None:
    serve(workers=args.workers)


def serve(*, reload: bool = False, workers: int | None = None) -> None:
    """Serve the API with uvicorn (uvloop + httptools), as production does, in ``workers``
    processes (default: the settings'); with ``reload`` (development only), in one process
    restarted whenever a source file changes.

    The workers' pools together stay within ``LIBRARY_DB_CONNECTION_BUDGET``: the default pool
    sizes are shrunk to fit. Raises RuntimeError, before anything starts, when configured sizes
    do not fit, or when a transaction-mode pooler is configured without PostgreSQL's own URL."""
    import uvicorn

    if workers is not None and workers < 1:
        raise RuntimeError("--workers must be at least 1")
    settings = Settings()
    if reload:
        workers = 1
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    fitted = settings.within_connection_budget()
    if fitted is not settings:
        # The workers read their settings from the environment: they get the fitted sizes.
        for name in POOL_SIZE_SETTINGS:
            os.environ[f"LIBRARY_{name.upper()}"] = str(getattr(fitted, name))
        pools = " + ".join(f"{k} {v}" for k, v in fitted.connections_per_worker().items())
        print(
            f"library serve: {fitted.workers} workers x ({pools}) connections, within "
            f"LIBRARY_DB_CONNECTION_BUDGET={fitted.db_connection_budget}",
            file=sys.stderr,
            flush=True,
        )
        settings = fitted
    if settings.events_relay_enabled:
        settings.require_direct_url()  # the relay's: refused now, not in every worker
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "access_log": False,  # our middleware logs each request once
        "log_config": None,  # logging is configured by the app (structlog)
        "proxy_headers": True,
        # Only these proxies' X-Forwarded-For is believed (the client address of limits and logs).
        "forwarded_allow_ips": settings.trusted_proxies,
        "timeout_graceful_shutdown": 20,
    }
    several = settings.workers > 1 and not reload
    with _metrics_folder(settings, several=several):
        if several:
            os.environ[_SUPERVISOR_PID] = str(os.getpid())  # the workers inherit it
            _supervise(uvicorn.Config(SUPERVISED_APP, workers=settings.workers, **options))
            return
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it; exit 0 (and run the
        # clean-up handlers, e.g. stopping the embedded database) instead of dying by it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        reloading: dict[str, Any] = (
            {"reload": True, "reload_dirs": [str(SOURCE_DIR)]} if reload else {"workers": 1}
        )
        uvicorn.run(APP, **options, **reloading)


@contextmanager
def _metrics_folder(settings: Settings, *, several: bool) -> Iterator[None]:
    """prometheus-client's multiprocess folder, ready before any worker starts.

    ``PROMETHEUS_MULTIPROC_DIR`` when it is set, emptied (files of an earlier run would be
    summed with this one's). Unset with several workers, a folder of this run's, removed at the
    end: each worker's /metrics then renders the sum of all of them, not its own requests."""
    from shared.observability.multiprocess import prepare_multiprocess_dir

    if not several or not settings.metrics_enabled or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prepare_multiprocess_dir()
        yield
        return
    with tempfile.TemporaryDirectory(prefix="library-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # the workers inherit it
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def supervised_app() -> Any:
    """A worker's app, in a worker that stops when its supervisor is gone.

    The supervisor stops its workers on SIGTERM and SIGINT; killed itself (SIGKILL, the OOM
    killer), it cannot, and its workers would go on serving on the shared socket, orphaned.
    So each worker asks Linux for a SIGTERM when its parent dies (``PR_SET_PDEATHSIG``): it then
    shuts down as on any SIGTERM (requests in flight answered, pools closed). A supervisor
    already gone before the worker asked is caught by comparing the parent's pid."""
    from library.bootstrap.app import create_app

    supervisor = os.environ.get(_SUPERVISOR_PID)
    if supervisor is not None and sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != int(supervisor):
            os.kill(os.getpid(), signal.SIGTERM)
    return create_app()


def _supervise(config: Any) -> None:
    """Run ``config.workers`` workers under uvicorn's supervisor, which also lets go of the
    listening socket as it stops them.

    On SIGTERM the supervisor passes the signal to every worker (each stops accepting, answers
    its requests in flight, closes its pools), waits for them all, and returns: exit 0. The
    workers share the supervisor's socket: kept open until the end, it would take new
    connections into its backlog that no worker answers any more; closed first, they are
    refused at once (as with one process), and a load balancer tries elsewhere.
    """
    from uvicorn.supervisors.multiprocess import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    Supervisor(config, sockets=[config.bind_socket()]).run()
