"""``library revision``: autogenerate a migration (embedded dev database unless DATABASE_URL is
set)."""

from __future__ import annotations

import argparse
from typing import Any

from library.cli.database import use_embedded_database
from library.cli.migrate import migrate
from shared.settings import Settings


def add_parser(commands: Any) -> None:
    revision_parser = commands.add_parser(
        "revision",
        help="autogenerate a migration (embedded dev database unless DATABASE_URL is set)",
    )
    revision_parser.add_argument("message", help="what the migration does")


def run(args: argparse.Namespace) -> None:
    if Settings().database_url is None:
        use_embedded_database()
    revision(args.message)


def revision(message: str, script_location: str | None = None) -> None:
    """Autogenerate a migration from the models' difference with the migrated database (which
    is upgraded to head first): review the file it writes in migrations/versions/."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    migrate()
    config = Config(Settings().alembic_config)
    if script_location is not None:
        config.set_main_option("script_location", script_location)
    # Revisions are numbered (0001, 0002, ...): the next one after the head.
    head = ScriptDirectory.from_config(config).get_current_head()
    rev_id = f"{int(head) + 1:04d}" if head is not None and head.isdigit() else None
    command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
