"""The rules of the Author aggregate: what a name, a bio and the life years may be."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from library.authors.domain.model import BIO_MAX_LENGTH, NAME_MAX_LENGTH, Author
from shared.kernel.errors import RuleViolationError
from shared.kernel.values import EARLIEST_YEAR

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
THIS_YEAR = NOW.year


def register(
    name: str = "Ursula K. Le Guin",
    *,
    birth_year: int | None = None,
    death_year: int | None = None,
    bio: str | None = None,
) -> Author:
    return Author.register(
        name=name, birth_year=birth_year, death_year=death_year, bio=bio, now=NOW
    )


def snapshot(author: Author) -> tuple[object, ...]:
    return (
        author.name,
        author.birth_year,
        author.death_year,
        author.bio,
        author.updated_at,
        author.version,
    )


# --- name ---------------------------------------------------------------------------------


def test_the_name_is_trimmed() -> None:
    assert register("  \t Ursula K. Le Guin \n ").name == "Ursula K. Le Guin"


def test_the_name_is_stored_in_nfc() -> None:
    decomposed = "Gabriel Garci\u0301a Ma\u0301rquez"
    author = register(decomposed)
    assert author.name == "Gabriel Garc\u00eda M\u00e1rquez"
    assert unicodedata.is_normalized("NFC", author.name)


@settings(max_examples=60, deadline=None)
@given(
    st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=40).filter(
        lambda s: s.strip() != ""
    )
)
def test_any_name_comes_back_trimmed_nfc_and_canonically_equal(raw: str) -> None:
    name = register(f"  {raw}\n").name
    assert name == name.strip()
    assert unicodedata.is_normalized("NFC", name)
    # Same text to a reader: only the encoding of accents and the surrounding space changed.
    assert unicodedata.normalize("NFD", name) == unicodedata.normalize("NFD", raw.strip())


@pytest.mark.parametrize("name", ["a\x00b", "\x00"])
def test_a_name_with_a_nul_character_is_refused(name: str) -> None:
    with pytest.raises(RuleViolationError) as exc:
        register(name)
    assert exc.value.errors[0].loc == ("name",)


@pytest.mark.parametrize("name", ["", " ", "   \t\n", "\u3000\u2003"])
def test_an_empty_or_blank_name_is_refused(name: str) -> None:
    with pytest.raises(RuleViolationError) as exc:
        register(name)
    assert exc.value.errors[0].loc == ("name",)


def test_a_name_of_300_characters_is_accepted_and_301_refused() -> None:
    assert register("x" * NAME_MAX_LENGTH).name == "x" * NAME_MAX_LENGTH
    with pytest.raises(RuleViolationError) as exc:
        register("x" * (NAME_MAX_LENGTH + 1))
    assert exc.value.errors[0].loc == ("name",)


def test_the_name_length_is_counted_after_trimming_and_normalising() -> None:
    assert len(register(" " * 5 + "x" * NAME_MAX_LENGTH + " " * 5).name) == NAME_MAX_LENGTH
    # 600 code points decomposed, 300 characters once composed.
    assert register("e\u0301" * NAME_MAX_LENGTH).name == "\u00e9" * NAME_MAX_LENGTH


# --- bio ----------------------------------------------------------------------------------


def test_a_bio_of_10000_characters_is_accepted_and_10001_refused() -> None:
    assert register(bio="b" * BIO_MAX_LENGTH).bio == "b" * BIO_MAX_LENGTH
    with pytest.raises(RuleViolationError) as exc:
        register(bio="b" * (BIO_MAX_LENGTH + 1))
    assert exc.value.errors[0].loc == ("bio",)


@pytest.mark.parametrize("bio", ["", "   ", "\n\t  \n"])
def test_a_blank_bio_becomes_none(bio: str) -> None:
    assert register(bio=bio).bio is None


def test_a_bio_is_trimmed() -> None:
    assert register(bio="\n  Wrote Earthsea.  \n").bio == "Wrote Earthsea."


# --- life years ---------------------------------------------------------------------------


def test_death_before_birth_is_refused() -> None:
    with pytest.raises(RuleViolationError) as exc:
        register(birth_year=1929, death_year=1928)
    assert exc.value.errors[0].loc == ("death_year",)


def test_death_in_the_birth_year_is_accepted() -> None:
    author = register(birth_year=1929, death_year=1929)
    assert (author.birth_year, author.death_year) == (1929, 1929)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=EARLIEST_YEAR, max_value=THIS_YEAR),
    st.integers(min_value=EARLIEST_YEAR, max_value=THIS_YEAR),
)
def test_a_lifespan_is_accepted_exactly_when_death_is_not_before_birth(
    birth: int, death: int
) -> None:
    if death >= birth:
        author = register(birth_year=birth, death_year=death)
        assert (author.birth_year, author.death_year) == (birth, death)
    else:
        with pytest.raises(RuleViolationError):
            register(birth_year=birth, death_year=death)


@pytest.mark.parametrize(
    ("birth_year", "death_year", "field"),
    [
        (THIS_YEAR + 1, None, "birth_year"),
        (None, THIS_YEAR + 1, "death_year"),
        (1950, THIS_YEAR + 1, "death_year"),
    ],
)
def test_a_year_in_the_future_is_refused(
    birth_year: int | None, death_year: int | None, field: str
) -> None:
    with pytest.raises(RuleViolationError) as exc:
        register(birth_year=birth_year, death_year=death_year)
    assert exc.value.errors[0].loc == (field,)


def test_the_current_year_is_not_the_future() -> None:
    author = register(birth_year=THIS_YEAR, death_year=THIS_YEAR)
    assert (author.birth_year, author.death_year) == (THIS_YEAR, THIS_YEAR)


def test_bce_years_are_negative_and_accepted() -> None:
    plato = register("Plato", birth_year=-428, death_year=-348)
    assert (plato.birth_year, plato.death_year) == (-428, -348)


def test_a_bce_death_before_a_bce_birth_is_refused() -> None:
    with pytest.raises(RuleViolationError):
        register("Plato", birth_year=-348, death_year=-428)


def test_years_before_the_earliest_year_are_refused() -> None:
    assert register(birth_year=EARLIEST_YEAR).birth_year == EARLIEST_YEAR
    with pytest.raises(RuleViolationError) as exc:
        register(birth_year=EARLIEST_YEAR - 1)
    assert exc.value.errors[0].loc == ("birth_year",)


# --- revise -------------------------------------------------------------------------------


def test_revising_only_the_death_year_is_checked_against_the_stored_birth_year() -> None:
    author = register(birth_year=1900)
    before = snapshot(author)
    with pytest.raises(RuleViolationError) as exc:
        author.revise(death_year=1899, now=LATER)
    assert exc.value.errors[0].loc == ("death_year",)
    assert snapshot(author) == before


def test_revising_only_the_birth_year_is_checked_against_the_stored_death_year() -> None:
    author = register(birth_year=1900, death_year=1950)
    before = snapshot(author)
    with pytest.raises(RuleViolationError):
        author.revise(birth_year=1960, now=LATER)
    assert snapshot(author) == before


def test_revising_both_years_together_is_checked_against_each_other() -> None:
    author = register(birth_year=1900, death_year=1950)
    assert author.revise(birth_year=1960, death_year=1990, now=LATER) is True
    assert (author.birth_year, author.death_year) == (1960, 1990)


def test_clearing_the_birth_year_lifts_the_lifespan_check() -> None:
    author = register(birth_year=1900)
    assert author.revise(birth_year=None, death_year=1800, now=LATER) is True
    assert (author.birth_year, author.death_year) == (None, 1800)


def test_revise_refuses_a_year_in_the_future() -> None:
    author = register()
    with pytest.raises(RuleViolationError) as exc:
        author.revise(death_year=THIS_YEAR + 1, now=LATER)
    assert exc.value.errors[0].loc == ("death_year",)
    assert author.death_year is None


def test_revise_refuses_an_invalid_name_and_changes_nothing() -> None:
    author = register("Kept", bio="Kept bio")
    before = snapshot(author)
    with pytest.raises(RuleViolationError) as exc:
        author.revise(name="   ", bio="New bio", now=LATER)
    assert exc.value.errors[0].loc == ("name",)
    assert snapshot(author) == before


def test_revise_without_changes_returns_false_and_keeps_updated_at() -> None:
    author = register("Ursula K. Le Guin", birth_year=1929, death_year=2018, bio="Earthsea")
    assert author.revise(now=LATER) is False
    assert author.updated_at == NOW


def test_revise_to_equivalent_values_is_no_change() -> None:
    author = register("Garc\u00eda", birth_year=1927, bio="Macondo")
    changed = author.revise(
        name="  Garci\u0301a ",  # the same name, decomposed and padded
        birth_year=1927,
        bio="  Macondo\n",
        now=LATER,
    )
    assert changed is False
    assert author.updated_at == NOW
    assert author.name == "Garc\u00eda"


def test_a_blank_bio_revision_of_an_author_without_bio_is_no_change() -> None:
    author = register(bio=None)
    assert author.revise(bio="   ", now=LATER) is False
    assert author.updated_at == NOW


def test_revise_with_a_change_returns_true_and_moves_updated_at() -> None:
    author = register("Old Name", birth_year=1929, bio="Old bio")
    assert author.revise(name="  New Name ", now=LATER) is True
    assert author.name == "New Name"
    assert author.updated_at == LATER
    # Fields not given stay as they were.
    assert (author.birth_year, author.bio, author.created_at) == (1929, "Old bio", NOW)


def test_revise_with_none_clears_an_optional_field() -> None:
    author = register(birth_year=1929, bio="Earthsea")
    assert author.revise(bio=None, birth_year=None, now=LATER) is True
    assert (author.bio, author.birth_year) == (None, None)
    assert author.updated_at == LATER
