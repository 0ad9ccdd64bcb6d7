"""The ``library`` command: serve the API, migrate the database, or run both for development."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from shared.settings import Settings

DEV_DATA_DIR = Path(".pgdata/dev")
DEV_DATABASE = "library"
# The role the development server connects as (reads and writes rows; no DDL).
DEV_APP_ROLE = "library_app"
# The development signing key, beside the embedded database (ignored by git).
DEV_KEY_DIR = Path(".pgdata/dev-auth")
DEV_SCOPES = "catalog:read catalog:write catalog:admin"
DEV_TOKEN_TTL_SECONDS = 8 * 3600


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


def grant_app_role(owner_url: str, role: str, *, create_password: str | None = None) -> None:
    """As the schema's owner: let the server's ``role`` read and write rows, nothing more
    (created first, with ``create_password``, when that is given)."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    from shared.persistence.roles import ensure_login_role, grant_row_access

    async def run() -> None:
        url = make_url(owner_url).set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            if create_password is not None:
                await ensure_login_role(conn, role, create_password or None)
            await grant_row_access(conn, role)
        finally:
            await conn.close()

    asyncio.run(run())


def serve(*, reload: bool = False) -> None:
    """Serve the API with uvicorn (uvloop + httptools), as production does; with ``reload``
    (development only), restart whenever a source file changes."""
    import uvicorn

    from shared.observability.multiprocess import prepare_multiprocess_dir

    settings = Settings()
    prepare_multiprocess_dir()  # metrics of several workers: a clean folder before they start
    reloading = (
        {"reload": True, "reload_dirs": [str(Path(__file__).resolve().parents[1])]}
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


def use_embedded_database(*, least_privilege: bool = False) -> None:
    """Start the embedded development PostgreSQL and point the settings at it.

    ``least_privilege`` (the server, ``make run``): migrations run as the embedded server's
    owner, and the server connects as DEV_APP_ROLE, which may only read and write rows.
    """
    from tools import devdb

    print(f"Starting the embedded PostgreSQL in {DEV_DATA_DIR}/ ...", flush=True)
    socket_dir, user = devdb.start(DEV_DATA_DIR.resolve())
    devdb.create_database(socket_dir, user, DEV_DATABASE)
    owner_url = devdb.url(socket_dir, user, DEV_DATABASE)
    os.environ["LIBRARY_DATABASE_URL"] = owner_url
    if least_privilege:
        # The role is created here (the embedded server is ours); `library migrate` grants it.
        grant_app_role(owner_url, DEV_APP_ROLE, create_password="")  # nosec B106
        os.environ["LIBRARY_MIGRATION_DATABASE_URL"] = owner_url
        os.environ["LIBRARY_DB_APP_ROLE"] = DEV_APP_ROLE
        os.environ["LIBRARY_DATABASE_URL"] = devdb.url(socket_dir, DEV_APP_ROLE, DEV_DATABASE)


def use_development_key() -> None:
    """Verify tokens with the development key pair (created once in DEV_KEY_DIR) unless a key
    set is configured."""
    from tools import devauth

    settings = Settings()
    if settings.auth_jwks_file is not None or settings.auth_jwks_url is not None:
        return
    key = devauth.ensure_key_pair(DEV_KEY_DIR.resolve())
    os.environ["LIBRARY_AUTH_JWKS_FILE"] = str(key.jwks_file)
    os.environ.setdefault("LIBRARY_AUTH_ISSUER", devauth.DEV_ISSUER)
    os.environ.setdefault("LIBRARY_AUTH_AUDIENCE", devauth.DEV_AUDIENCE)


def development_token(scopes: str, *, ttl: int, sub: str) -> str:
    """A token signed with this checkout's development key, for the configured issuer and
    audience (the development ones by default)."""
    from tools import devauth

    settings = Settings()
    key = devauth.ensure_key_pair(DEV_KEY_DIR.resolve())
    return key.sign(
        scopes,
        sub=sub,
        ttl=ttl,
        issuer=settings.auth_issuer or devauth.DEV_ISSUER,
        audience=settings.auth_audience or devauth.DEV_AUDIENCE,
    )


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


def import_catalog(args: argparse.Namespace) -> int:
    """``library import goodbooks PATH``: load a catalog export; returns the exit status."""
    import asyncio

    from rich.console import Console

    from library.books.importing.goodbooks import SourceError
    from library.books.importing.runner import default_report_path
    from library.bootstrap.catalog_import import ImportOptions, import_goodbooks
    from library.bootstrap.health import NotReadyError

    console = Console(stderr=True)
    path = Path(args.path)
    report_path = Path(args.report) if args.report else default_report_path(path)
    if Settings().database_url is None:
        use_embedded_database()
    options = ImportOptions(
        path=path,
        report_path=report_path,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        format=args.format,
    )
    started = time.perf_counter()
    try:
        summary = asyncio.run(import_goodbooks(options, console))
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotReadyError as exc:
        print(f"error: the database is not ready: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every finished batch is committed; run the same command again to "
            "finish (books already imported are recognised and skipped)",
            file=sys.stderr,
        )
        return 130
    elapsed = time.perf_counter() - started
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{path}: {summary.rows:,} rows in {elapsed:.2f}s"
        + (" (dry run: nothing was written)" if args.dry_run else "")
    )
    print(f"  {verb + ':':<21}{summary.imported:>8,}")
    print(f"  {'already present:':<21}{summary.present:>8,}")
    print(f"  {'rejected:':<21}{summary.rejected:>8,}")
    print(f"  {'with warnings:':<21}{summary.warned:>8,}  (imported or present, see the report)")
    authors = "authors to register" if args.dry_run else "authors registered"
    print(f"  {authors + ':':<21}{summary.authors_registered:>8,}")
    print(f"report: {report_path} (rejected rows and warnings)")
    if not summary.consistent:  # pragma: no cover - a bug, not an input problem
        print("error: the counts do not add up to the rows read", file=sys.stderr)
        return 1
    return 0


def export_catalog(args: argparse.Namespace) -> int:
    """``library export``: stream the whole catalog to a file or stdout; the exit status."""
    import asyncio

    from rich.console import Console

    from library.bootstrap.catalog_export import ExportOptions, export_catalog
    from library.bootstrap.health import NotReadyError

    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        print(f"error: {out} is a directory: --out needs a file name", file=sys.stderr)
        return 2
    if Settings().database_url is None:
        use_embedded_database()
    try:
        output = sys.stdout.buffer if out is None else out.open("wb")
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        options = ExportOptions(format=args.format, out=out)
        written = asyncio.run(export_catalog(options, output, Console(stderr=True)))
    except NotReadyError as exc:
        print(f"error: the database is not ready: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1  # the reader went away (e.g. `| head`): nothing more to say
    except KeyboardInterrupt:
        print("\ninterrupted: the export is incomplete", file=sys.stderr)
        return 130
    finally:
        if out is not None:
            output.close()
    elapsed = time.perf_counter() - started
    where = "stdout" if out is None else str(out)
    print(
        f"exported {written:,} books to {where} ({args.format}) in {elapsed:.2f}s", file=sys.stderr
    )
    return 0


def _batch_size(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 50_000:
        raise argparse.ArgumentTypeError("must be between 1 and 50000")
    return number


def seed(*, books: int, seed: int, replace: bool, source: Path) -> None:
    """Migrate, then write a generated catalog of ``books`` books (see tools.seed)."""
    import asyncio
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from sqlalchemy.engine import make_url

    from tools import seed as seeding

    if not source.is_file():
        raise SystemExit(
            f"error: {source} not found: pass --source with goodbooks-10k's books.csv "
            "(https://github.com/zygmuntz/goodbooks-10k)"
        )
    migrate()
    url = make_url(Settings().require_database_url()).set(drivername="postgresql")
    profile = seeding.CatalogProfile.from_csv(source)
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        tasks: dict[str, object] = {}

        class Report:
            def begin(self, stage: str, total: int) -> None:
                tasks[stage] = bar.add_task(stage, total=total)

            def advance(self, stage: str, done: int) -> None:
                bar.advance(tasks[stage], done)  # type: ignore[arg-type]

        authors, written = asyncio.run(
            seeding.seed(
                url.render_as_string(hide_password=False),
                profile,
                books=books,
                seed=seed,
                replace=replace,
                progress=Report(),
            )
        )
    elapsed = time.perf_counter() - started
    print(f"Seeded {written:,} books and {authors:,} authors in {elapsed:.0f} s.", flush=True)


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
    dev_parser = commands.add_parser(
        "dev", help="migrate and serve, with an embedded PostgreSQL if needed"
    )
    dev_parser.add_argument(
        "--reload", action="store_true", help="restart the server whenever a source file changes"
    )
    revision_parser = commands.add_parser(
        "revision",
        help="autogenerate a migration (embedded dev database unless DATABASE_URL is set)",
    )
    revision_parser.add_argument("message", help="what the migration does")
    token_parser = commands.add_parser(
        "token",
        help="print a development access token (signed with this checkout's development key)",
        description="Print one access token on stdout, signed with the development key that "
        "`library dev` (make run) verifies tokens with.",
    )
    token_parser.add_argument(
        "--scope",
        default="catalog:write catalog:admin",
        help='space-separated scopes (default: "catalog:write catalog:admin")',
    )
    token_parser.add_argument(
        "--ttl", type=_positive, default=3600, help="seconds until it expires (default 3600)"
    )
    token_parser.add_argument("--sub", default="developer", help="the subject (default developer)")
    import_parser = commands.add_parser(
        "import",
        help="import a catalog export (goodbooks books.csv)",
        description="Import a catalog export. Without DATABASE_URL, into the embedded "
        "development database (the one `make run` serves). Exit status: 0 done (rejected rows "
        "are in the report), 1 database not ready, 2 bad file or arguments, 130 interrupted.",
    )
    import_parser.add_argument(
        "format",
        choices=["goodbooks", "jsonl", "csv"],
        help="goodbooks: a goodbooks-10k books.csv; jsonl or csv: a `library export` file",
    )
    import_parser.add_argument("path", help="the file to import")
    import_parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=2000,
        help="rows per transaction (default: 2000)",
    )
    import_parser.add_argument(
        "--dry-run", action="store_true", help="validate and report, write nothing"
    )
    import_parser.add_argument(
        "--report",
        metavar="FILE",
        help="where to write rejected rows and warnings (default: <name>.import-report.csv)",
    )
    export_parser = commands.add_parser(
        "export",
        help="write the whole catalog (books with their credited authors) as JSON Lines or CSV",
        description="Stream every book, with its credited authors in order, ordered by ref. "
        "`library import jsonl|csv FILE` reads it back. Without DATABASE_URL, from the "
        "embedded development database. Exit status: 0 done, 1 database not ready, 2 bad "
        "arguments, 130 interrupted.",
    )
    export_parser.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="default: jsonl"
    )
    export_parser.add_argument("--out", metavar="FILE", help="the file to write (default: stdout)")
    seed_parser = commands.add_parser(
        "seed", help="migrate, then fill an empty catalog with N generated books"
    )
    seed_parser.add_argument("--books", type=_positive, required=True, help="how many books")
    seed_parser.add_argument(
        "--seed", type=int, default=1, help="random seed: same seed, same rows (default 1)"
    )
    seed_parser.add_argument(
        "--replace",
        action="store_true",
        help="empty the catalog first (it must be empty otherwise)",
    )
    seed_parser.add_argument(
        "--source",
        type=Path,
        default=Path(
            os.environ.get("LIBRARY_SEED_SOURCE", "../shared/data/goodbooks-10k/books.csv")
        ),
        help="goodbooks-10k books.csv whose distributions the catalog follows",
    )
    seed_parser.add_argument(
        "--embedded-if-unset",
        action="store_true",
        help="without a configured DATABASE_URL, seed the embedded development database",
    )
    args = parser.parse_args(argv)
    if args.command == "import":
        raise SystemExit(import_catalog(args))
    if args.command == "token":
        print(development_token(args.scope, ttl=args.ttl, sub=args.sub))
        return
    if args.command == "export":
        raise SystemExit(export_catalog(args))
    try:
        if args.command == "serve":
            serve()
        elif args.command == "migrate":
            if args.embedded_if_unset and Settings().database_url is None:
                use_embedded_database()
            migrate(args.revision)
        elif args.command == "revision":
            if Settings().database_url is None:
                use_embedded_database()
            revision(args.message)
        elif args.command == "seed":
            if args.embedded_if_unset and Settings().database_url is None:
                use_embedded_database()
            seed(books=args.books, seed=args.seed, replace=args.replace, source=args.source)
        else:
            dev(reload=args.reload)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {raw})")
    return value


if __name__ == "__main__":
    main()
