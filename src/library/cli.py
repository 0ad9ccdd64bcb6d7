"""The ``library`` command: serve the API, migrate the database, or run both for development."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from shared.settings import Settings

DEV_DATA_DIR = Path(".pgdata/dev")
DEV_DATABASE = "library"


def migrate(revision: str = "head") -> None:
    """Upgrade the database named by the settings to ``revision``."""
    from alembic import command
    from alembic.config import Config

    settings = Settings()
    settings.require_database_url()
    config_path = Path(settings.alembic_config)
    if not config_path.is_file():
        raise SystemExit(
            f"error: {config_path} not found; run from the project folder "
            "or set LIBRARY_ALEMBIC_CONFIG"
        )
    command.upgrade(Config(str(config_path)), revision)


def serve() -> None:
    """Serve the API with uvicorn (uvloop + httptools), as production does."""
    import uvicorn

    settings = Settings()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; exit 0 (and run the
    # clean-up handlers, e.g. stopping the embedded database) instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "library.bootstrap.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=False,  # our middleware logs each request once
        log_config=None,  # logging is configured by the app (structlog)
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )


def use_embedded_database() -> None:
    """Start the embedded development PostgreSQL and point the settings at it."""
    from shared import devdb

    print(f"Starting the embedded PostgreSQL in {DEV_DATA_DIR}/ ...", flush=True)
    socket_dir, user = devdb.start(DEV_DATA_DIR.resolve())
    devdb.create_database(socket_dir, user, DEV_DATABASE)
    os.environ["LIBRARY_DATABASE_URL"] = devdb.url(socket_dir, user, DEV_DATABASE)


def dev() -> None:
    """Serve for development: an embedded PostgreSQL unless DATABASE_URL is set, migrated first."""
    settings = Settings()
    os.environ.setdefault("LIBRARY_ENVIRONMENT", "development")
    if settings.database_url is None:
        use_embedded_database()
    else:
        print("Using the database in DATABASE_URL.", flush=True)
    migrate()
    base = f"http://{settings.host}:{settings.port}"
    print(f"\n  API:  {base}/api/v1/books  and  {base}/api/v1/authors", flush=True)
    print(f"  Docs: {base}/docs\n  Press Ctrl-C to stop.\n", flush=True)
    serve()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``library`` console script."""
    parser = argparse.ArgumentParser(prog="library", description="The library catalog service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve the API (production: DATABASE_URL must be set)")
    migrate_parser = commands.add_parser("migrate", help="upgrade the database schema")
    migrate_parser.add_argument(
        "revision", nargs="?", default="head", help="target (default: head)"
    )
    migrate_parser.add_argument(
        "--embedded-if-unset",
        action="store_true",
        help="without a configured DATABASE_URL, migrate the embedded development database",
    )
    commands.add_parser("dev", help="migrate and serve, with an embedded PostgreSQL if needed")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve()
        elif args.command == "migrate":
            if args.embedded_if_unset and Settings().database_url is None:
                use_embedded_database()
            migrate(args.revision)
        else:
            dev()
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
