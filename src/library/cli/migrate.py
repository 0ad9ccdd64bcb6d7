"""``library migrate``: upgrade the database schema (then grant the server's role its rows)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from library.cli.database import add_embedded_if_unset, embedded_if_unset, grant_app_role
from shared.settings import Settings


def add_parser(commands: Any) -> None:
    migrate_parser = commands.add_parser("migrate", help="upgrade the database schema")
    migrate_parser.add_argument(
        "revision", nargs="?", default="head", help="target (default: head)"
    )
    add_embedded_if_unset(migrate_parser, "migrate")


def run(args: argparse.Namespace) -> None:
    embedded_if_unset(args)
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
