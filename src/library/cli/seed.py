"""``library seed``: migrate, then fill an empty catalog with N generated books
(the generator is ``tools.seed``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from library.cli.arguments import _positive
from library.cli.database import add_embedded_if_unset, embedded_if_unset
from library.cli.migrate import migrate
from shared.settings import Settings


def add_parser(commands: Any) -> None:
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
    add_embedded_if_unset(seed_parser, "seed")


def run(args: argparse.Namespace) -> None:
    embedded_if_unset(args)
    seed(books=args.books, seed=args.seed, replace=args.replace, source=args.source)


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
    # PostgreSQL itself, past a pooler (asyncpg's COPY names its statement).
    url = make_url(Settings().direct().require_database_url()).set(drivername="postgresql")
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
