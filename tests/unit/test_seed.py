"""The generated catalog: reproducible, shaped like its source, and valid for every domain rule."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from library.authors.domain.model import NAME_MAX_LENGTH
from library.books.domain.model import valid_isbn, valid_language, valid_title
from shared.kernel.values import clean_text
from tools.seed import CatalogGenerator, CatalogProfile

SAMPLE = Path(__file__).parents[1] / "data" / "catalog_sample.csv"


@pytest.fixture(scope="module")
def profile() -> CatalogProfile:
    return CatalogProfile.from_csv(SAMPLE)


def generate(profile: CatalogProfile, books: int, seed: int) -> tuple[list[tuple], list[tuple]]:  # type: ignore[type-arg]
    generator = CatalogGenerator(profile, books=books, seed=seed)
    authors = list(generator.author_rows())
    return authors, list(generator.book_rows())


def test_the_same_seed_gives_the_same_catalog_and_another_seed_another(
    profile: CatalogProfile,
) -> None:
    assert generate(profile, 300, seed=7) == generate(profile, 300, seed=7)
    assert generate(profile, 300, seed=7) != generate(profile, 300, seed=8)


def test_one_author_per_five_books_and_every_credit_names_a_generated_author(
    profile: CatalogProfile,
) -> None:
    authors, books = generate(profile, 1000, seed=1)
    assert len(authors) == 200
    assert len(books) == 1000
    author_ids = {a[0] for a in authors}
    names = {a[0]: a[1] for a in authors}
    for book, credits in books:
        assert 1 <= len(credits) <= 50
        assert [c[2] for c in credits] == list(range(len(credits)))
        assert len({c[1] for c in credits}) == len(credits)
        assert {c[1] for c in credits} <= author_ids
        assert all(c[0] == book[0] for c in credits)
        assert book[7] == [c[1] for c in credits]
        assert book[8] == [names[c[1]] for c in credits]


def test_the_real_names_come_first_so_searches_for_real_authors_find_them(
    profile: CatalogProfile,
) -> None:
    authors, _ = generate(profile, 1000, seed=1)
    names = {a[1] for a in authors}
    assert {"J.R.R. Tolkien", "Victor Hugo", "Gabriel García Márquez"} <= names


def test_every_row_passes_the_rules_the_api_enforces(profile: CatalogProfile) -> None:
    authors, books = generate(profile, 2000, seed=3)
    for _, name, birth, death, bio, created, updated in authors:
        assert clean_text("name", name, max_length=NAME_MAX_LENGTH) == name
        assert bio is None
        assert created == updated
        if death is not None:
            assert birth is not None
            assert birth <= death <= 2024
    isbns = [b[2] for b, _ in books if b[2] is not None]
    assert len(isbns) == len(set(isbns))
    for (_, title, isbn, year, language, _, _, _, _), _ in books:
        assert valid_title(title) == title
        assert isbn is None or valid_isbn(isbn) == isbn
        assert language is None or valid_language(language) == language
        assert year is None or -9999 <= year <= 2026


def test_the_catalog_follows_the_source_distributions(profile: CatalogProfile) -> None:
    _, books = generate(profile, 6000, seed=5)
    # The sample: 10 of 12 books have an ISBN, 1 of 12 no year, "en" the most common language.
    with_isbn = sum(1 for b, _ in books if b[2] is not None) / len(books)
    assert with_isbn == pytest.approx(10 / 12, abs=0.03)
    without_year = sum(1 for b, _ in books if b[3] is None) / len(books)
    assert without_year == pytest.approx(1 / 12, abs=0.02)
    languages = Counter(b[4] for b, _ in books)
    assert languages.most_common(1)[0][0] == "en"
    assert "fr" in languages  # normalised as the API stores it ("fre" -> "fr")
    assert "xx-invalid" not in languages
    assert max(len(c) for _, c in books) == 3
