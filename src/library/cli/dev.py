"""``library dev`` (``make run``): migrate and serve, with an embedded PostgreSQL if needed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from library.cli.database import use_embedded_database
from library.cli.migrate import migrate
from library.cli.serve import serve
from library.cli.token import development_token, use_development_key
from shared.settings import Settings

DEV_SCOPES = "catalog:read catalog:write catalog:admin"
DEV_TOKEN_TTL_SECONDS = 8 * 3600


def add_parser(commands: Any) -> None:
    dev_parser = commands.add_parser(
        "dev", help="migrate and serve, with an embedded PostgreSQL if needed"
    )
    dev_parser.add_argument(
        "--reload", action="store_true", help="restart the server whenever a source file changes"
    )


def run(args: argparse.Namespace) -> None:
    dev(reload=args.reload)


def psql_url(database_url: str) -> str:
    """The libpq URL of a database URL (for psql), its password hidden."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    text = url.set(query={}).render_as_string(hide_password=True)
    # libpq decodes %XX in a URI's parameters, but not "+" (as SQLAlchemy writes a space).
    query = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in url.query.items())
    return f"{text}?{query}" if query else text


def dev(*, reload: bool = False) -> None:
    """Serve for development: an embedded PostgreSQL unless DATABASE_URL is set, migrated first;
    with ``reload``, restarted on every change to the source."""
    settings = Settings()
    os.environ.setdefault("LIBRARY_ENVIRONMENT", "development")
    if settings.database_url is None:
        use_embedded_database(least_privilege=True)
    else:
        print("Using the database in DATABASE_URL.", flush=True)
    migrate()
    use_development_key()
    token = development_token(DEV_SCOPES, ttl=DEV_TOKEN_TTL_SECONDS, sub="developer")
    base = f"http://{settings.host}:{settings.port}"
    print(f"\n  API:  {base}/api/v1/books  and  {base}/api/v1/authors", flush=True)
    print(f"  Docs: {base}/docs", flush=True)
    print(f'  psql: psql "{psql_url(Settings().require_database_url())}"\n', flush=True)
    print(
        f"  A token for writes ({DEV_SCOPES}, 8 hours; `make -s token` for another):\n"
        f"  export TOKEN={token}\n",
        flush=True,
    )
    if reload:
        print("  Reloading on every change under src/.", flush=True)
    print("  Press Ctrl-C to stop.\n", flush=True)
    serve(reload=reload)
