"""The rules of the Book aggregate: ISBN, language, title, credits and publication year."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from library.books.domain.model import (
    LANGUAGE_MAX_LENGTH,
    MAX_AUTHORS,
    TITLE_MAX_LENGTH,
    Book,
    valid_author_ids,
    valid_isbn,
    valid_language,
    valid_publication_year,
    valid_title,
)
from shared.kernel.errors import RuleViolationError
from shared.kernel.values import EARLIEST_YEAR

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ISBN13 = re.compile(r"97[89][0-9]{10}")


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str(-total % 10)


def isbn10_check_digit(first9: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(first9))
    check = -total % 11
    return "X" if check == 10 else str(check)


def refused_field(exc: pytest.ExceptionInfo[RuleViolationError]) -> tuple[str | int, ...]:
    return exc.value.errors[0].loc


valid_isbn13s = st.builds(
    lambda prefix, body: prefix + body + isbn13_check_digit(prefix + body),
    st.sampled_from(["978", "979"]),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)


# --- ISBN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_isbn", "isbn13"),
    [
        ("0-306-40615-2", "9780306406157"),
        ("0306406152", "9780306406157"),
        ("0 306 40615 2", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("978-0-306-40615-7", "9780306406157"),
        ("978 0 306 40615 7", "9780306406157"),
        ("9780306406157", "9780306406157"),
        ("979-10-90636-07-1", "9791090636071"),
    ],
)
def test_isbn_10_and_13_are_stored_as_13_digits(given_isbn: str, isbn13: str) -> None:
    assert valid_isbn(given_isbn) == isbn13


@pytest.mark.parametrize(
    "bad",
    [
        "0-306-40615-3",  # ISBN-10, wrong check digit
        "978-0-306-40615-8",  # ISBN-13, wrong check digit
        "030640615",  # 9 digits
        "03064061522",  # 11 digits
        "978030640615",  # 12 digits
        "97803064061570",  # 14 digits
        "",
        "not an isbn",
    ],
)
def test_a_wrong_check_digit_or_length_is_refused(bad: str) -> None:
    with pytest.raises(RuleViolationError) as exc:
        valid_isbn(bad)
    assert refused_field(exc) == ("isbn",)


@settings(max_examples=60, deadline=None)
@given(valid_isbn13s, st.data())
def test_any_valid_isbn13_round_trips_with_or_without_separators(
    isbn13: str, data: st.DataObject
) -> None:
    assert valid_isbn(isbn13) == isbn13
    separators = data.draw(st.lists(st.sampled_from(["", "", "-", " "]), min_size=13, max_size=13))
    spaced = "".join(digit + sep for digit, sep in zip(isbn13, separators, strict=True))
    assert valid_isbn(spaced) == isbn13


@settings(max_examples=80, deadline=None)
@given(valid_isbn13s, st.integers(min_value=0, max_value=12), st.integers(min_value=1, max_value=9))
def test_changing_any_one_digit_of_an_isbn13_is_refused(
    isbn13: str, position: int, delta: int
) -> None:
    digit = str((int(isbn13[position]) + delta) % 10)
    flipped = isbn13[:position] + digit + isbn13[position + 1 :]
    with pytest.raises(RuleViolationError):
        valid_isbn(flipped)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_any_valid_isbn10_becomes_the_978_isbn13_of_the_same_book(body: str) -> None:
    isbn10 = body + isbn10_check_digit(body)
    isbn13 = valid_isbn(isbn10)
    assert ISBN13.fullmatch(isbn13)
    assert isbn13[:12] == "978" + body
    assert valid_isbn(isbn13) == isbn13  # what is stored is itself a valid ISBN


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789Xx- ", max_size=20))
def test_whatever_is_accepted_is_stored_as_an_isbn13(raw: str) -> None:
    try:
        stored = valid_isbn(raw)
    except RuleViolationError:
        return
    assert ISBN13.fullmatch(stored)


# --- language -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_language", "normalised"),
    [
        ("en", "en"),
        ("eng", "en"),
        ("EN", "en"),
        ("fre", "fr"),
        ("fra", "fr"),
        ("ger", "de"),
        ("deu", "de"),
        ("en_US", "en-US"),
        ("EN-us", "en-US"),
        ("en-gb", "en-GB"),
        (" fr-CA ", "fr-CA"),
        ("zh-hant", "zh-Hant"),
    ],
)
def test_languages_are_normalised(given_language: str, normalised: str) -> None:
    assert valid_language(given_language) == normalised


@pytest.mark.parametrize("bad", ["zz", "english", "", "   ", "x", "e" * (LANGUAGE_MAX_LENGTH + 1)])
def test_unknown_languages_are_refused(bad: str) -> None:
    with pytest.raises(RuleViolationError) as exc:
        valid_language(bad)
    assert refused_field(exc) == ("language",)


@pytest.mark.parametrize("tag", ["eng", "fre", "en_US", "EN-us", "ger", "sr-latn-rs"])
def test_a_normalised_language_stays_as_it_is(tag: str) -> None:
    once = valid_language(tag)
    assert valid_language(once) == once


# --- title --------------------------------------------------------------------------------


def test_a_title_is_trimmed_and_nfc() -> None:
    assert valid_title("  Cien an\u0303os de soledad \n") == "Cien a\u00f1os de soledad"


@pytest.mark.parametrize("bad", ["", "   ", "\t\n"])
def test_an_empty_title_is_refused(bad: str) -> None:
    with pytest.raises(RuleViolationError) as exc:
        valid_title(bad)
    assert refused_field(exc) == ("title",)


def test_a_title_of_500_characters_is_accepted_and_501_refused() -> None:
    assert valid_title("t" * TITLE_MAX_LENGTH) == "t" * TITLE_MAX_LENGTH
    with pytest.raises(RuleViolationError) as exc:
        valid_title("t" * (TITLE_MAX_LENGTH + 1))
    assert refused_field(exc) == ("title",)


# --- author ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, MAX_AUTHORS + 1])
def test_zero_or_more_than_50_authors_are_refused(count: int) -> None:
    with pytest.raises(RuleViolationError) as exc:
        valid_author_ids([uuid.uuid4() for _ in range(count)])
    assert refused_field(exc) == ("author_ids",)
    assert str(count) in exc.value.errors[0].msg


@pytest.mark.parametrize("count", [1, MAX_AUTHORS])
def test_one_to_50_authors_are_kept_in_credit_order(count: int) -> None:
    ids = [uuid.uuid4() for _ in range(count)]
    assert valid_author_ids(ids) == tuple(ids)


def test_a_duplicate_author_is_refused_naming_the_duplicate() -> None:
    first, twice, last = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuleViolationError) as exc:
        valid_author_ids([first, twice, last, twice])
    assert refused_field(exc) == ("author_ids",)
    msg = exc.value.errors[0].msg
    assert str(twice) in msg
    assert str(first) not in msg
    assert str(last) not in msg


# --- publication year ---------------------------------------------------------------------


def test_next_year_is_accepted_and_the_year_after_refused() -> None:
    assert valid_publication_year(NOW.year + 1, now=NOW) == NOW.year + 1
    with pytest.raises(RuleViolationError) as exc:
        valid_publication_year(NOW.year + 2, now=NOW)
    assert refused_field(exc) == ("publication_year",)


@pytest.mark.parametrize("year", [-800, -1, 0, EARLIEST_YEAR])
def test_bce_publication_years_are_accepted(year: int) -> None:
    assert valid_publication_year(year, now=NOW) == year


def test_a_publication_year_before_the_earliest_year_is_refused() -> None:
    with pytest.raises(RuleViolationError):
        valid_publication_year(EARLIEST_YEAR - 1, now=NOW)


# --- the aggregate ------------------------------------------------------------------------


def make_book(**changes: object) -> Book:
    fields: dict[str, object] = {
        "title": "The Dispossessed",
        "author_ids": [uuid.uuid4()],
        "isbn": "0-06-051275-X",
        "publication_year": 1974,
        "language": "eng",
    }
    fields.update(changes)
    return Book.create(now=NOW, **fields)  # type: ignore[arg-type]


def test_create_normalises_every_field() -> None:
    authors = [uuid.uuid4(), uuid.uuid4()]
    book = make_book(title="  The Dispossessed ", author_ids=authors)
    assert (book.title, book.author_ids, book.isbn13, book.publication_year, book.language) == (
        "The Dispossessed",
        tuple(authors),
        "9780060512750",
        1974,
        "en",
    )
    assert book.created_at == book.updated_at == NOW


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", " "),
        ("author_ids", []),
        ("isbn", "9780060512751"),
        ("publication_year", NOW.year + 2),
        ("language", "english"),
    ],
)
def test_create_refuses_a_broken_rule_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(RuleViolationError) as exc:
        make_book(**{field: value})
    assert refused_field(exc) == (field,)


def test_a_book_may_have_no_isbn_year_or_language() -> None:
    book = make_book(isbn=None, publication_year=None, language=None)
    assert (book.isbn13, book.publication_year, book.language) == (None, None, None)


def test_revising_to_the_same_isbn_in_another_form_is_no_change() -> None:
    book = make_book(isbn="978-0-06-051275-0", language="en")
    assert book.revise(isbn="0-06-051275-X", language="eng", now=LATER) is False
    assert book.updated_at == NOW


def test_revising_a_field_returns_true_and_moves_updated_at() -> None:
    book = make_book()
    assert book.revise(isbn=None, now=LATER) is True
    assert book.isbn13 is None
    assert book.updated_at == LATER
    assert (book.title, book.publication_year, book.language) == ("The Dispossessed", 1974, "en")


def test_reordering_the_credits_is_a_change() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    book = make_book(author_ids=[a, b])
    assert book.revise(author_ids=[b, a], now=LATER) is True
    assert book.author_ids == (b, a)


def test_a_refused_revision_changes_nothing() -> None:
    book = make_book()
    with pytest.raises(RuleViolationError):
        book.revise(title="New Title", language="zz", now=LATER)
    assert (book.title, book.language, book.updated_at) == ("The Dispossessed", "en", NOW)
