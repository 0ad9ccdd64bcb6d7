"""``library serve``: serve the API (production: DATABASE_URL must be set)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from shared.settings import Settings

# src/, which the development server watches with --reload.
SOURCE_DIR = Path(__file__).resolve().parents[2]


def add_parser(commands: Any) -> None:
    commands.add_parser("serve", help="serve the API (production: DATABASE_URL must be set)")


def run(args: argparse.Namespace) -> None:
    serve()


def serve(*, reload: bool = False) -> None:
    """Serve the API with uvicorn (uvloop + httptools), as production does; with ``reload``
    (development only), restart whenever a source file changes."""
    import uvicorn

    from shared.observability.multiprocess import prepare_multiprocess_dir

    settings = Settings()
    prepare_multiprocess_dir()  # metrics of several workers: a clean folder before they start
    reloading = (
        {"reload": True, "reload_dirs": [str(SOURCE_DIR)]}
        if reload
        else {"workers": settings.workers}
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; exit 0 (and run the
    # clean-up handlers, e.g. stopping the embedded database) instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "library.bootstrap.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,  # our middleware logs each request once
        log_config=None,  # logging is configured by the app (structlog)
        proxy_headers=True,
        # Only these proxies' X-Forwarded-For is believed (the client address of limits and logs).
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=20,
        **reloading,
    )
