"""`library import goodbooks` end to end: a real process, a real PostgreSQL, then the API."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from library.cli import main
from tests.integration.credit_copies import check_credit_copies
from tests.integration.helpers import API

ROOT = Path(__file__).resolve().parents[3]
QUIRKS = ROOT / "tests" / "integration" / "data" / "goodbooks_quirks.csv"
GOODBOOKS = Path(
    os.environ.get("GOODBOOKS_CSV", ROOT.parent / "shared" / "data" / "goodbooks-10k" / "books.csv")
)

pytestmark = pytest.mark.usefixtures("clean_database")


def import_command(path: Path, report: Path, *args: str) -> list[str]:
    """``library import goodbooks`` as a separate process runs it."""
    command = ["-m", "library.cli", "import", "goodbooks", str(path), "--report", str(report)]
    return [sys.executable, *command, *args]


def run_import(
    database_url: str, path: Path, report: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        import_command(path, report, *args),
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Awaitable[Done]]:
    """``library import goodbooks`` in this process (fast): exit status, stdout and stderr."""

    async def run(path: Path, report: Path, *args: str, url: str = database_url) -> Done:
        monkeypatch.setenv("DATABASE_URL", url)
        argv = ["import", "goodbooks", str(path), "--report", str(report), *args]

        def call() -> int:
            try:
                main(argv)
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else 1
            return 0

        code = await asyncio.to_thread(call)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def counts(output: str) -> dict[str, int]:
    """The summary's counts by label: imported, already present, rejected, with warnings..."""
    found = re.findall(r"^\s+([a-z ]+):\s+([\d,]+)", output, flags=re.MULTILINE)
    return {label: int(number.replace(",", "")) for label, number in found}


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def test_the_quirks_file_is_imported_and_served_by_the_api(
    cli: Callable[..., Awaitable[Done]],
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.csv"
    done = await cli(QUIRKS, report)
    assert done.returncode == 0, done.stderr
    summary = counts(done.stdout)
    assert summary["imported"] == 12
    assert summary["already present"] == 1  # a second listing of an ISBN already in the file
    assert summary["rejected"] == 2  # a blank title and a row with too few fields
    assert summary["with warnings"] == 2  # a bad ISBN-10 check digit, an unknown language
    assert summary["authors registered"] == 15

    books = (await client.get(f"{API}/books", params={"limit": 100, "sort": "title"})).json()
    by_title = {b["title"]: b for b in books["items"]}
    assert len(by_title) == 12
    potter = by_title["Harry Potter and the Sorcerer's Stone (Harry Potter, #1)"]
    assert [a["name"] for a in potter["authors"]] == ["J.K. Rowling", "Mary GrandPré"]
    assert potter["isbn13"] == "9780439554930"  # padded ISBN-10 439554934, not the float isbn13
    assert potter["language"] == "en-US"
    assert by_title["The Hunger Games (The Hunger Games, #1)"]["isbn13"] == "9780439023481"
    assert by_title["Dune"]["isbn13"] == "9780804429573"  # an ISBN-10 ending in X
    assert by_title["Reading Lolita in Tehran"]["isbn13"] is None  # the check digit fails
    iliad = by_title["The Iliad"]
    assert (iliad["publication_year"], iliad["language"]) == (-720, "grc")
    assert [a["name"] for a in iliad["authors"]] == ["Homer", "Robert Fagles", "Bernard Knox"]
    assert by_title["The Epic of Gilgamesh"]["publication_year"] is None
    assert by_title["Les Misérables"]["language"] == "fr"
    assert by_title["Les Misérables"]["authors"][0]["name"] == "Victor Hugo"
    assert "Shōgun (Asian Saga, #1)" in by_title
    assert by_title["“Palace Walk”"]["language"] == "ar"
    assert by_title["Invisible Planets"]["language"] is None

    # One person, one author: across books, and across NFC/NFD spellings of the name.
    phoenix = by_title["Harry Potter and the Order of the Phoenix (Harry Potter, #5)"]
    assert [a["id"] for a in phoenix["authors"]] == [a["id"] for a in potter["authors"]]
    assert await scalar(engine, "SELECT count(*) FROM authors") == 15
    assert await scalar(engine, "SELECT count(*) FROM authors WHERE name = 'Somebody'") == 0
    # One event per book and per author registered, as if each were created through the API.
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM books b JOIN events e ON e.resource_id = b.id "
            "AND e.type = 'book.created' AND e.version = 1",
        )
        == 12
    )
    assert await scalar(engine, "SELECT count(*) FROM events WHERE type = 'author.created'") == 15
    assert await scalar(engine, "SELECT count(*) FROM events") == 27
    # Each book's copy of its credits and its search document are what the credits say
    # (the NFD spelling of a name is credited under the stored, NFC, name).
    copies = await check_credit_copies(engine)
    assert (copies.books, copies.stale) == (12, [])
    assert copies.with_coauthors == 4  # two Harry Potters, The Iliad, Les Misérables

    with report.open(encoding="utf-8", newline="") as stream:
        problems = list(csv.DictReader(stream))
    assert [(p["row"], p["status"], p["problem"]) for p in problems] == [
        ("4", "imported", "warning"),
        ("11", "rejected", "rejected"),
        ("12", "rejected", "rejected"),
        ("15", "imported", "warning"),
    ]
    assert problems[1]["reason"] == "expected 23 fields, found 5"
    assert problems[1]["raw"] == "15,1015,not,enough,fields"
    assert problems[1]["line"] == "12"
    assert problems[2]["reason"] == "title must not be empty"
    assert problems[2]["raw"].startswith("11,1011,")


async def test_a_second_run_imports_nothing_and_registers_no_author(
    cli: Callable[..., Awaitable[Done]], engine: AsyncEngine, tmp_path: Path
) -> None:
    first = await cli(QUIRKS, tmp_path / "1.csv")
    assert first.returncode == 0, first.stderr
    second = await cli(QUIRKS, tmp_path / "2.csv")
    assert second.returncode == 0, second.stderr
    summary = counts(second.stdout)
    assert (summary["imported"], summary["already present"], summary["rejected"]) == (0, 13, 2)
    assert summary["authors registered"] == 0
    assert await scalar(engine, "SELECT count(*) FROM books") == 12
    assert await scalar(engine, "SELECT count(*) FROM authors") == 15
    assert await scalar(engine, "SELECT count(*) FROM events") == 27  # the first run's only


async def test_a_dry_run_reports_the_same_counts_and_writes_nothing(
    cli: Callable[..., Awaitable[Done]], engine: AsyncEngine, tmp_path: Path
) -> None:
    done = await cli(QUIRKS, tmp_path / "r.csv", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run" in done.stdout
    summary = counts(done.stdout)
    assert (summary["would import"], summary["already present"], summary["rejected"]) == (12, 1, 2)
    assert await scalar(engine, "SELECT count(*) FROM books") == 0
    assert await scalar(engine, "SELECT count(*) FROM authors") == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (
            b"book_id,isbn,title\n1,,x\n",
            "missing column(s) authors, original_publication_year, language_code",
        ),
        (
            "book_id,isbn,authors,original_publication_year,title,language_code\n"
            "1,,Ann,,Fine,eng\n2,,Hugo,,Les Mis\xe9rables,fre\n".encode("latin-1"),
            "line 3 is not valid UTF-8",
        ),
    ],
    ids=["missing", "empty", "columns", "not-utf8"],
)
async def test_a_bad_file_is_a_clear_error_and_writes_nothing(
    cli: Callable[..., Awaitable[Done]],
    engine: AsyncEngine,
    tmp_path: Path,
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / "input.csv"
    if content is not None:
        path.write_bytes(content)
    done = await cli(path, tmp_path / "r.csv")
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert await scalar(engine, "SELECT count(*) FROM books") == 0


async def test_an_unreachable_database_is_a_clear_error(
    cli: Callable[..., Awaitable[Done]], tmp_path: Path
) -> None:
    done = await cli(QUIRKS, tmp_path / "r.csv", url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert done.returncode == 1
    assert "the database is not ready" in done.stderr
    assert "Traceback" not in done.stderr


def goodbooks_file() -> Path:
    if not GOODBOOKS.is_file():  # a missing data set fails loudly; it is never skipped
        pytest.fail(f"{GOODBOOKS} not found: set GOODBOOKS_CSV to the goodbooks-10k books.csv")
    return GOODBOOKS


def distinct_normalised_names(path: Path) -> int:
    """Computed here independently of the importer: split on commas, NFC, whitespace collapsed."""
    with path.open(encoding="utf-8", newline="") as stream:
        return len(
            {
                " ".join(unicodedata.normalize("NFC", name).split())
                for row in csv.DictReader(stream)
                for name in row["authors"].split(",")
                if name.strip()
            }
        )


@pytest.mark.slow
async def test_the_full_goodbooks_file_counts_add_up_and_a_second_run_imports_nothing(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    path = goodbooks_file()
    first = await asyncio.to_thread(run_import, database_url, path, tmp_path / "1.csv")
    assert first.returncode == 0, first.stderr
    summary = counts(first.stdout)
    assert summary["imported"] + summary["already present"] + summary["rejected"] == 10_000
    assert summary["rejected"] == 0
    assert summary["with warnings"] >= 23  # at least the 23 ISBN-10s with a wrong check digit
    assert await scalar(engine, "SELECT count(*) FROM books") == summary["imported"]
    authors = await scalar(engine, "SELECT count(*) FROM authors")
    assert authors == distinct_normalised_names(path)
    # Every book has its credits, numbered from 0 without gaps.
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM books b WHERE (SELECT count(*) FROM book_authors c "
            "WHERE c.book_id = b.id) = 0 OR (SELECT max(position) + 1 - count(*) "
            "FROM book_authors c WHERE c.book_id = b.id) <> 0",
        )
        == 0
    )
    copies = await check_credit_copies(engine)
    assert (copies.books, copies.stale) == (summary["imported"], [])
    assert copies.with_coauthors > 1000

    second = await asyncio.to_thread(run_import, database_url, path, tmp_path / "2.csv")
    assert second.returncode == 0, second.stderr
    again = counts(second.stdout)
    assert (again["imported"], again["already present"]) == (0, summary["imported"])
    assert await scalar(engine, "SELECT count(*) FROM authors") == authors


@pytest.mark.slow
async def test_an_import_killed_mid_way_is_consistent_and_a_rerun_finishes_it(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    path = goodbooks_file()
    process = await asyncio.create_subprocess_exec(
        *import_command(path, tmp_path / "killed.csv", "--batch-size", "250"),
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # wait until a few batches are in, then kill -9 mid-run
            if await scalar(engine, "SELECT count(*) FROM books") >= 1000:
                break
            if process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(process.wait(), timeout=30)
    partial = await scalar(engine, "SELECT count(*) FROM books")
    assert 0 < partial < 10_000, "the kill must land mid-import for this test to mean anything"
    assert partial % 250 == 0, "only whole batches are committed"
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM books b WHERE NOT EXISTS "
            "(SELECT 1 FROM book_authors c WHERE c.book_id = b.id)",
        )
        == 0
    )

    rerun = await asyncio.to_thread(run_import, database_url, path, tmp_path / "rerun.csv")
    assert rerun.returncode == 0, rerun.stderr
    summary = counts(rerun.stdout)
    assert summary["imported"] + summary["already present"] + summary["rejected"] == 10_000
    assert summary["already present"] == partial
    assert await scalar(engine, "SELECT count(*) FROM books") == 10_000
    assert await scalar(engine, "SELECT count(*) FROM authors") == distinct_normalised_names(path)
