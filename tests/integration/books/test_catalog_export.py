"""`library export` and `library import jsonl|csv`: the catalog leaves and comes back unchanged."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from alembic import command
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from library.cli import main
from tests.integration.books.test_goodbooks_import import QUIRKS, counts, goodbooks_file, scalar
from tests.integration.conftest import alembic_config
from tests.integration.helpers import create_author, create_book
from tests.integration.postgres import Server


def _call(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


async def library(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *argv: str
) -> tuple[int, str, str]:
    """``library ARGV`` in this process against ``url``: exit status, stdout, stderr."""
    monkeypatch.setenv("DATABASE_URL", url)
    code = await asyncio.to_thread(_call, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fresh_database(postgres_server: Server, clean_database: None) -> str:
    """A second, empty database migrated to head (the round trip's destination)."""
    name = f"{postgres_server.app_database}_export"
    postgres_server.recreate_database(name)
    url = postgres_server.database_url(name)
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.mark.slow
async def test_the_full_goodbooks_catalog_round_trips_through_an_export(
    database_url: str,
    fresh_database: str,
    engine: AsyncEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:

    async def run(url: str, *argv: str) -> tuple[int, str, str]:
        return await library(monkeypatch, capsys, url, *argv)

    source = goodbooks_file()
    code, out, err = await run(
        database_url, "import", "goodbooks", str(source), "--report", str(tmp_path / "r0.csv")
    )
    assert code == 0, err
    books = counts(out)["imported"]
    assert books > 9000

    first_jsonl, first_csv = tmp_path / "first.jsonl", tmp_path / "first.csv"
    tracemalloc.start()
    code, _, err = await run(database_url, "export", "--out", str(first_jsonl))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert code == 0, err
    # Streamed: the export never holds the catalog (holding it all peaks near 4x the file).
    assert peak < first_jsonl.stat().st_size, (peak, first_jsonl.stat().st_size)
    assert f"exported {books:,} books" in err
    code, _, err = await run(database_url, "export", "--format", "csv", "--out", str(first_csv))
    assert code == 0, err

    code, out, err = await run(
        fresh_database, "import", "jsonl", str(first_jsonl), "--report", str(tmp_path / "r1.csv")
    )
    assert code == 0, err
    summary = counts(out)
    assert (summary["imported"], summary["rejected"], summary["with warnings"]) == (books, 0, 0)

    second_jsonl, second_csv = tmp_path / "second.jsonl", tmp_path / "second.csv"
    assert (await run(fresh_database, "export", "--out", str(second_jsonl)))[0] == 0
    assert (await run(fresh_database, "export", "--format", "csv", "--out", str(second_csv)))[
        0
    ] == 0
    assert second_jsonl.read_bytes() == first_jsonl.read_bytes()
    assert second_csv.read_bytes() == first_csv.read_bytes()

    # The export holds every book with its credits in order, as the API shows them.
    records = [orjson.loads(line) for line in first_jsonl.read_bytes().splitlines()]
    assert len(records) == books == await scalar(engine, "SELECT count(*) FROM books")
    hunger_games = next(r for r in records if r["isbn13"] == "9780439023481")
    assert hunger_games["ref"] == "goodbooks:1"
    assert hunger_games["authors"] == ["Suzanne Collins"]
    assert list(hunger_games) == [
        "ref",
        "title",
        "authors",
        "isbn13",
        "publication_year",
        "language",
    ]
    assert [r["ref"] for r in records] == sorted(r["ref"] for r in records)

    # The CSV export reads back too: into the same database, every book is already present.
    code, out, err = await run(
        fresh_database, "import", "csv", str(first_csv), "--report", str(tmp_path / "r2.csv")
    )
    assert code == 0, err
    assert (counts(out)["imported"], counts(out)["already present"]) == (0, books)


async def test_books_from_the_api_and_awkward_names_survive_both_formats(
    database_url: str,
    fresh_database: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:

    async def run(url: str, *argv: str) -> tuple[int, str, str]:
        return await library(monkeypatch, capsys, url, *argv)

    report = str(tmp_path / "r.csv")
    assert (await run(database_url, "import", "goodbooks", str(QUIRKS), "--report", report))[0] == 0
    # Books created through the API have no external reference: they export as library:<id>.
    comma = await create_author(client, "Le Guin, Ursula K.")
    quote = await create_author(client, 'Dwayne "The Rock" Johnson')
    book = await create_book(
        client, 'A "quoted", comma\ntitle', [quote["id"], comma["id"]], publication_year=-5
    )
    for fmt in ("jsonl", "csv"):
        exported = tmp_path / f"a.{fmt}"
        assert (await run(database_url, "export", "--format", fmt, "--out", str(exported)))[0] == 0
        assert f"library:{book['id']}" in exported.read_text(encoding="utf-8")
        await _truncate(fresh_database)
        code, out, err = await run(fresh_database, "import", fmt, str(exported), "--report", report)
        assert code == 0, err
        assert counts(out)["rejected"] == 0
        again = tmp_path / f"b.{fmt}"
        assert (await run(fresh_database, "export", "--format", fmt, "--out", str(again)))[0] == 0
        assert again.read_bytes() == exported.read_bytes(), fmt


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("TRUNCATE book_authors, books, authors CASCADE")
    finally:
        await conn.close()


async def test_bad_export_and_import_input_is_a_clear_error(
    database_url: str,
    clean_database: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:

    async def run(*argv: str) -> tuple[int, str, str]:
        return await library(monkeypatch, capsys, database_url, *argv)

    code, _, err = await run("export", "--format", "xml")
    assert code == 2
    assert "invalid choice: 'xml'" in err
    code, _, err = await run("export", "--out", str(tmp_path))
    assert (code, "is a directory" in err) == (2, True)
    code, _, err = await run("export", "--out", str(tmp_path / "missing" / "x.jsonl"))
    assert (code, "cannot write" in err) == (2, True)
    code, _, err = await run(
        "export", "--out", str(tmp_path / "x"), url := "postgresql+asyncpg://nobody@127.0.0.1:1/x"
    )
    assert code == 2  # an extra argument
    monkeypatch.setenv("DATABASE_URL", url)
    code = await asyncio.to_thread(_call, ["export", "--out", str(tmp_path / "x.jsonl")])
    assert code == 1
    assert "the database is not ready" in capsys.readouterr().err

    goodbooks_csv = tmp_path / "goodbooks.jsonl"
    goodbooks_csv.write_bytes(QUIRKS.read_bytes())
    code, _, err = await run("import", "jsonl", str(goodbooks_csv), "--report", str(tmp_path / "r"))
    assert (code, "is not JSON" in err) == (2, True)
    code, _, err = await run("import", "csv", str(QUIRKS), "--report", str(tmp_path / "r"))
    assert (code, "missing column(s) ref" in err) == (2, True)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        '{"ref": "x:1", "title": "Fine", "authors": ["A Person"]}\n'
        "{not json\n"
        '{"ref": "x:2", "title": "No authors", "authors": []}\n'
        '{"ref": "x:3", "title": "Bad year", "authors": ["A"], "publication_year": "1999"}\n',
        encoding="utf-8",
    )
    code, out, err = await run("import", "jsonl", str(broken), "--report", str(tmp_path / "r"))
    assert code == 0, err
    assert (counts(out)["imported"], counts(out)["rejected"]) == (1, 3)
