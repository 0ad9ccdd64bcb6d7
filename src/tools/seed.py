"""A large, realistic, reproducible catalog for scale tests and benchmarks (``library seed``).

The catalog follows the distributions of a real one (goodbooks-10k's ``books.csv``): title words
and title shapes, authors per book, publication years (missing at the file's rate), languages
(normalised as the API stores them, missing at the file's rate), ISBNs present at the file's
rate. Names of authors are the file's real names first, then names recombined from their
first-name and surname parts; about one author per five books, a few of them prolific.

Everything is drawn from one ``random.Random(seed)``: the same ``--seed`` and ``--books`` give
the same rows, ids included. Rows go in with binary COPY in batches; the secondary indexes are
dropped first and rebuilt once at the end (much faster than maintaining them row by row), all
in one transaction, so a failed seed leaves the database as it was.

This module writes the tables of both contexts directly: it is a composition-level tool, like
the migrations, and lives in the composition root.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import math
import random
import re
import unicodedata
import uuid
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from library.books.domain.model import MAX_AUTHORS, TITLE_MAX_LENGTH, valid_language
from shared.kernel.errors import RuleViolationError

DEFAULT_SOURCE = Path("../shared/data/goodbooks-10k/books.csv")
BOOKS_PER_AUTHOR = 5
BATCH_SIZE = 50_000
# created_at spreads over these years, so the created_at sort has realistic keys.
CREATED_FROM = datetime(2015, 1, 1, tzinfo=UTC)
CREATED_SPAN = timedelta(days=365 * 10)
LATEST_DEATH = 2024
TABLES = ("book_authors", "books", "authors")
_WORD = re.compile(r"^[^\W\d_]+(?:['\u2019-][^\W\d_]+)*$")


class Progress(Protocol):
    """Hears how far the seed is: stages "authors", "books", "indexes", "analyze"."""

    def begin(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, done: int) -> None: ...


class _Silent:
    def begin(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, done: int) -> None:
        pass


class _Weighted:
    """Draws values with the frequencies they had in the source (one bisect per draw)."""

    def __init__(self, counts: Counter[Any]) -> None:
        # Sorted so the draw does not depend on the order of the file or of a hash.
        items = sorted(counts.items(), key=lambda kv: (-kv[1], repr(kv[0])))
        self.values = [value for value, _ in items]
        self._cumulative = list(accumulate(count for _, count in items))
        self._total = self._cumulative[-1]

    def draw(self, rng: random.Random) -> Any:
        return self.values[bisect(self._cumulative, rng.random() * self._total)]


@dataclass(frozen=True)
class CatalogProfile:
    """The distributions of a real catalog that a generated one reproduces."""

    titles: list[str]
    title_words: _Weighted
    authors_per_book: _Weighted
    years: _Weighted  # None where the source has no year
    languages: _Weighted  # None where the source has no (valid) language
    isbn_rate: float
    real_names: list[str]
    first_names: _Weighted
    surnames: _Weighted

    @classmethod
    def from_csv(cls, path: Path) -> CatalogProfile:
        """Read the distributions of goodbooks-10k's ``books.csv`` (or a file with its columns)."""
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            raise RuntimeError(f"{path} holds no books")
        titles = [_clean(r["title"]) for r in rows if _clean(r["title"])]
        words: Counter[str] = Counter(
            word for title in titles for word in title.split() if _WORD.match(word)
        )
        credits = [[a.strip() for a in r["authors"].split(",") if a.strip()] for r in rows]
        names = sorted({_clean(a) for authors in credits for a in authors if _clean(a)})
        first_names: Counter[str] = Counter()
        surnames: Counter[str] = Counter()
        for authors in credits:
            for name in authors:
                parts = _clean(name).split()
                if len(parts) >= 2:
                    first_names[" ".join(parts[:-1])] += 1
                    surnames[parts[-1]] += 1
        years: Counter[int | None] = Counter(_year(r["original_publication_year"]) for r in rows)
        languages: Counter[str | None] = Counter(_language(r["language_code"]) for r in rows)
        return cls(
            titles=titles,
            title_words=_Weighted(words),
            authors_per_book=_Weighted(Counter(min(max(len(a), 1), MAX_AUTHORS) for a in credits)),
            years=_Weighted(years),
            languages=_Weighted(languages),
            isbn_rate=sum(1 for r in rows if r["isbn13"].strip()) / len(rows),
            real_names=names,
            first_names=_Weighted(first_names),
            surnames=_Weighted(surnames),
        )


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _year(raw: str) -> int | None:
    try:
        return int(float(raw))
    except ValueError:
        return None


def _language(raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        return valid_language(raw)
    except RuleViolationError:
        return None


class CatalogGenerator:
    """Rows of a catalog of ``books`` books, all drawn from one seeded random generator."""

    def __init__(self, profile: CatalogProfile, *, books: int, seed: int) -> None:
        self.profile = profile
        self.books = books
        self.authors = max(1, math.ceil(books / BOOKS_PER_AUTHOR))
        # Reproducible test data, not secrets: a seeded PRNG is the point.
        self._rng = random.Random(seed)  # noqa: S311  # nosec B311
        self._author_ids: list[uuid.UUID] = []
        self._author_names: list[str] = []
        # ISBN bodies walk a permutation of 0..10^9-1: unique without remembering them.
        self._isbn_offset = self._rng.randrange(10**9)
        self._isbn_count = 0
        # Each source title split once, with which of its words may be swapped: a title is
        # drawn from these (same length as the titles, so the same draws pick the same title).
        self._title_shapes = [
            [(word, bool(_WORD.match(word))) for word in title.split()] for title in profile.titles
        ]

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _created_at(self) -> datetime:
        return CREATED_FROM + CREATED_SPAN * self._rng.random()

    def author_rows(self) -> Iterator[tuple[Any, ...]]:
        """``authors`` rows: (id, name, birth_year, death_year, bio, created_at, updated_at)."""
        rng, p = self._rng, self.profile
        real = list(p.real_names)
        rng.shuffle(real)
        for i in range(self.authors):
            author_id = self._uuid()
            self._author_ids.append(author_id)
            synthetic = i >= len(real)
            name = f"{p.first_names.draw(rng)} {p.surnames.draw(rng)}" if synthetic else real[i]
            self._author_names.append(name)
            birth = death = None
            year = p.years.draw(rng)
            if year is not None and rng.random() < 0.7:
                birth = min(year - rng.randint(20, 60), 2000)
                if rng.random() < 0.4:
                    death = min(birth + rng.randint(30, 95), LATEST_DEATH)
            created = self._created_at()
            yield (author_id, name, birth, death, None, created, created)

    def book_rows(self) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
        """(``books`` row, its ``book_authors`` rows); call after ``author_rows`` is exhausted.

        The books row carries the copy of its credits and names the triggers of migration 0003
        keep (credited_ids, credited_names), so the seed can load it directly.
        """
        if len(self._author_ids) != self.authors:
            raise RuntimeError("generate the authors first")
        # The hot loop of the seed (a million books): everything it calls is bound locally.
        # The draws are the same, in the same order, as the plain version would make them, so a
        # seed gives the same rows whatever the speed-ups.
        rng, p = self._rng, self.profile
        random, new_id, created_at = rng.random, self._uuid, self._created_at
        title, isbn = self._title, self._isbn
        per_book, year, language = p.authors_per_book.draw, p.years.draw, p.languages.draw
        authors, author_ids, author_names = self.authors, self._author_ids, self._author_names
        isbn_rate = p.isbn_rate
        for _ in range(self.books):
            book_id = new_id()
            count = min(per_book(rng), authors)
            picked: list[int] = []
            while len(picked) < count:
                # Skewed towards the first authors: a few write many books, most write one.
                author = int(authors * random() ** 2)
                if author not in picked:
                    picked.append(author)
            credited = [author_ids[a] for a in picked]
            created = created_at()
            row = (
                book_id,
                title(),
                isbn() if random() < isbn_rate else None,
                year(rng),
                language(rng),
                created,
                created,
                credited,
                [author_names[a] for a in picked],
            )
            yield row, [(book_id, a, position) for position, a in enumerate(credited)]

    def _title(self) -> str:
        rng = self._rng
        random, word = rng.random, self.profile.title_words.draw
        shape = rng.choice(self._title_shapes)
        if rng.random() >= 0.25:  # a quarter keep a real title; the rest swap some words
            words = [word(rng) if swappable and random() < 0.5 else w for w, swappable in shape]
        else:
            words = [w for w, _ in shape]
        return " ".join(words)[:TITLE_MAX_LENGTH].strip() or "Untitled"

    def _isbn(self) -> str:
        # 387420489 = 3^18 is coprime with 10^9: i -> i * 3^18 mod 10^9 is a bijection.
        body = (self._isbn_offset + self._isbn_count * 387_420_489) % 10**9
        self._isbn_count += 1
        # EAN-13 check digit of 978 + body: weights 1,3,1 for 978 (38), then 3,1,3 | 1,3,1 |
        # 3,1,3 for the body's three groups of three digits.
        total = (
            38
            + _WEIGHTS_313[body // 1_000_000]
            + _WEIGHTS_131[body // 1000 % 1000]
            + _WEIGHTS_313[body % 1000]
        )
        return f"978{body:09d}{-total % 10}"


def _weighted_digits(weights: tuple[int, int, int]) -> list[int]:
    """For each number 0..999, the sum of its three digits times ``weights``."""
    return [
        weights[0] * (n // 100) + weights[1] * (n // 10 % 10) + weights[2] * (n % 10)
        for n in range(1000)
    ]


_WEIGHTS_313 = _weighted_digits((3, 1, 3))
_WEIGHTS_131 = _weighted_digits((1, 3, 1))


def batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY($1::text[]) AND t.relnamespace = current_schema()::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
# Keys and foreign keys: dropped foreign keys first, re-added after the keys they reference.
_KEYS = """
SELECT t.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
WHERE t.relname = ANY($1::text[]) AND t.relnamespace = current_schema()::regnamespace
  AND k.contype IN ('p', 'u', 'f')
ORDER BY k.contype = 'f' DESC, k.conname
"""
_AUTHOR_COLUMNS = ("id", "name", "birth_year", "death_year", "bio", "created_at", "updated_at")
_BOOK_COLUMNS = (
    "id",
    "title",
    "isbn13",
    "publication_year",
    "language",
    "created_at",
    "updated_at",
    "credited_ids",
    "credited_names",
)
_CREDIT_COLUMNS = ("book_id", "author_id", "position")


async def seed(
    dsn: str,
    profile: CatalogProfile,
    *,
    books: int,
    seed: int,
    replace: bool = False,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Write a generated catalog of ``books`` books; return (authors, books) written.

    RuntimeError if the catalog is not empty, unless ``replace`` (which empties it first).
    While it loads, the tables have no keys and no secondary indexes: building each once at
    the end is several times faster than maintaining it row by row (and foreign keys are then
    validated by one join instead of a trigger per row). It all happens in one transaction.
    """
    report = progress or _Silent()
    generator = CatalogGenerator(profile, books=books, seed=seed)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            if replace:
                await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            elif await conn.fetchval(
                "SELECT EXISTS (SELECT FROM books UNION ALL SELECT FROM authors)"
            ):
                raise RuntimeError("the catalog is not empty: use --replace to empty it first")
            indexes = await conn.fetch(_SECONDARY_INDEXES, list(TABLES))
            keys = await conn.fetch(_KEYS, list(TABLES))
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index[0]}"')
            for table, name, _ in keys:
                await conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            # The rows carry the credits' copy already: no trigger needs to refresh the books
            # (the books' own trigger, which computes search_document per row, stays on).
            await conn.execute("ALTER TABLE book_authors DISABLE TRIGGER USER")
            report.begin("authors", generator.authors)
            report.begin("books", books)
            with _without_cycle_collection():
                for rows in batches(generator.author_rows(), BATCH_SIZE):
                    await conn.copy_records_to_table(
                        "authors", records=rows, columns=_AUTHOR_COLUMNS
                    )
                    report.advance("authors", len(rows))
                await _copy_books(conn, generator, report)
            await conn.execute("ALTER TABLE book_authors ENABLE TRIGGER USER")
            report.begin("indexes", len(indexes) + len(keys))
            for table, name, definition in reversed(keys):
                await conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
                report.advance("indexes", 1)
            for index in indexes:
                await conn.execute(index[1])
                report.advance("indexes", 1)
        # Fresh statistics and visibility map: the planner and index-only scans need both.
        report.begin("analyze", len(TABLES))
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
            report.advance("analyze", 1)
    finally:
        await conn.close()
    return generator.authors, books


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while the rows are made: they hold no cycles (reference
    counting frees them), but with a batch of 50,000 books alive every collection walks it,
    which cost about 40% of the generator's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _copy_books(
    conn: asyncpg.Connection, generator: CatalogGenerator, report: Progress
) -> None:
    """COPY the books and their credits, drawing the next batch while the server loads one."""
    source = batches(generator.book_rows(), BATCH_SIZE)

    def draw() -> list[Any] | None:
        return next(source, None)

    pairs = await asyncio.to_thread(draw)
    while pairs is not None:
        upcoming = asyncio.create_task(asyncio.to_thread(draw))
        try:
            await conn.copy_records_to_table(
                "books", records=[book for book, _ in pairs], columns=_BOOK_COLUMNS
            )
            await conn.copy_records_to_table(
                "book_authors",
                records=[credit for _, credits in pairs for credit in credits],
                columns=_CREDIT_COLUMNS,
            )
        finally:
            next_pairs = await upcoming
        report.advance("books", len(pairs))
        pairs = next_pairs
