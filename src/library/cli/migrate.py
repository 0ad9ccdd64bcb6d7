"""``library migrate``: upgrade the database schema (then grant the server's role its rows)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from library.cli.database import grant_app_role, use_embedded_database
from shared.settings import Settings


def add_parser(commands: Any) -> None:
    migrate_parser = commands.add_parser("migrate", help="upgrade the database schema")
    migrate_parser.add_argument(
        "revision", nargs="?", default="head", help="target (default: head)"
    )
    migrate_parser.add_argument(
        "--embedded-if-unset",
        action="store_true",
        help="without a configured DATABASE_URL, migrate the embedded development database",
    )


def run(args: argparse.Namespace) -> None:
    if args.embedded_if_unset and Settings().database_url is None:
        use_embedded_database()
    migrate(args.revision)


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
    if settings.db_app_role:
        grant_app_role(settings.require_migration_url(), settings.db_app_role)
