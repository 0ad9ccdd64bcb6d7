"""The goodbooks reader: repair rules, author splitting, and what a broken file answers."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import isbn as stdnum_isbn

from library.books.interchange.goodbooks import (
    REQUIRED_COLUMNS,
    GoodbooksReader,
    SourceError,
    parse_language,
    parse_year,
    repair_isbn10,
    split_authors,
)

NOW = datetime(2026, 11, 27, tzinfo=UTC)
HEADER = "book_id,isbn,isbn13,authors,original_publication_year,title,language_code"


def isbn10_of(core: str) -> str:
    """The valid ISBN-10 whose first nine digits are ``core``."""
    total = sum((10 - i) * int(d) for i, d in enumerate(core))
    check = (11 - total % 11) % 11
    return core + ("X" if check == 10 else str(check))


cores = st.text(alphabet="0123456789", min_size=9, max_size=9)


# --- ISBN repair ----------------------------------------------------------------------------


def test_an_isbn10_that_lost_its_leading_zero_is_padded_and_becomes_an_isbn13() -> None:
    assert repair_isbn10("439023483") == ("9780439023481", None)


def test_an_isbn10_ending_in_x_is_kept() -> None:
    assert repair_isbn10("080442957X") == ("9780804429573", None)


def test_an_isbn10_with_a_wrong_check_digit_is_dropped_with_a_warning() -> None:
    isbn, warning = repair_isbn10("812971060")
    assert isbn is None
    assert warning is not None
    assert "812971060" in warning
    assert "0812971060" in warning


def test_no_isbn_is_no_isbn_and_no_warning() -> None:
    assert repair_isbn10("  ") == (None, None)


@given(cores, st.integers(min_value=0, max_value=8))
def test_any_valid_isbn10_survives_losing_its_leading_zeros(core: str, zeros: int) -> None:
    full = isbn10_of("0" * zeros + core[zeros:])
    mangled = full.lstrip("0") or "0"
    assert repair_isbn10(mangled) == (stdnum_isbn.to_isbn13(full), None)


@given(cores, st.sampled_from("0123456789X"))
def test_the_repair_agrees_with_stdnum_on_every_check_digit(core: str, check: str) -> None:
    candidate = core + check
    isbn, warning = repair_isbn10(candidate)
    if stdnum_isbn.is_valid(candidate):
        assert (isbn, warning) == (stdnum_isbn.to_isbn13(candidate), None)
    else:
        assert isbn is None
        assert warning is not None


# --- authors ----------------------------------------------------------------------------------


def test_authors_are_split_in_credit_order() -> None:
    assert split_authors("J.K. Rowling, Mary GrandPré") == ("J.K. Rowling", "Mary GrandPré")


def test_names_are_trimmed_collapsed_and_nfc_and_blanks_and_repeats_dropped() -> None:
    decomposed = unicodedata.normalize("NFD", "Mary GrandPré")
    assert split_authors(f"  Victor   Hugo ,, {decomposed}, Mary GrandPré ,") == (
        "Victor Hugo",
        "Mary GrandPré",
    )


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8))
def test_split_names_are_clean_distinct_and_in_first_seen_order(parts: list[str]) -> None:
    names = split_authors(",".join(parts))
    for name in names:
        assert name
        assert name == name.strip()
        assert "," not in name
        assert "  " not in name
        assert unicodedata.is_normalized("NFC", name)
    assert len(set(names)) == len(names)
    expected = [
        " ".join(unicodedata.normalize("NFC", p).split()) for p in ",".join(parts).split(",")
    ]
    assert list(names) == list(dict.fromkeys(e for e in expected if e))


# --- years and languages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year"), [("2008.0", 2008), ("-720.0", -720), ("1.5e3", 1500), ("", None), ("0.0", 0)]
)
def test_years_are_read_from_floats(text: str, year: int | None) -> None:
    assert parse_year(text, now=NOW) == (year, None)


@pytest.mark.parametrize("text", ["abc", "2008.5", "1e999999", "nan", "inf", "3000.0", "-99999.0"])
def test_a_year_that_is_not_one_is_dropped_with_a_warning(text: str) -> None:
    year, warning = parse_year(text, now=NOW)
    assert year is None
    assert warning is not None


@given(st.integers(min_value=-9999, max_value=2027))
def test_every_year_the_rules_accept_reads_back_from_its_float_form(year: int) -> None:
    assert parse_year(f"{float(year)}", now=NOW) == (year, None)


@pytest.mark.parametrize(
    ("code", "tag"),
    [
        ("eng", "en"),
        ("en-US", "en-US"),
        ("en-GB", "en-GB"),
        ("fre", "fr"),
        ("ara", "ar"),
        ("", None),
    ],
)
def test_language_codes_take_the_form_the_api_returns(code: str, tag: str | None) -> None:
    assert parse_language(code) == (tag, None)


def test_an_unknown_language_code_is_dropped_with_a_warning() -> None:
    tag, warning = parse_language("xx-!!")
    assert tag is None
    assert warning is not None
    assert "xx-!!" in warning


# --- the file --------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "books.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read(path: Path) -> list:  # type: ignore[type-arg]
    return list(GoodbooksReader(path, now=NOW).rows())


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        read(tmp_path / "nope.csv")


def test_a_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="directory"):
        read(tmp_path)


def test_an_empty_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="empty"):
        read(write(tmp_path, ""))


def test_missing_columns_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing column\\(s\\) authors, title") as info:
        read(write(tmp_path, "book_id,isbn,original_publication_year,language_code\n1,,,\n"))
    assert "language_code" not in str(info.value).split("in the header")[0]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        f"{HEADER}\n1,,,Ann,,Fine,eng\n2,,,Hugo,,Les Mis\xe9rables,fre\n".encode("latin-1")
    )
    with pytest.raises(SourceError, match="line 3 is not valid UTF-8"):
        read(path)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    rows = read(write(tmp_path, f"\ufeff{HEADER}\n7,,,Ann,,Fine,eng\n"))
    assert rows[0].draft.external_ref == "goodbooks:7"


def test_rows_carry_their_number_line_and_raw_text(tmp_path: Path) -> None:
    text = f'{HEADER}\n1,,,Ann,,"Two\nlines",eng\n\n2,,,Bob,,Plain,eng\n'
    rows = read(write(tmp_path, text))
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 5)]
    assert rows[0].raw == '1,,,Ann,,"Two\nlines",eng'
    assert rows[0].draft.title == "Two\nlines"


def test_a_row_with_the_wrong_number_of_fields_is_rejected_and_the_next_is_read(
    tmp_path: Path,
) -> None:
    rows = read(write(tmp_path, f"{HEADER}\n1,,,Ann,,Short\n2,,,Bob,,Fine,eng\n"))
    assert rows[0].draft is None
    assert rows[0].rejection == "expected 7 fields, found 6"
    assert rows[1].draft is not None


def test_broken_quoting_is_a_rejected_row_not_a_crash(tmp_path: Path) -> None:
    rows = read(write(tmp_path, f'{HEADER}\n1,,,Ann,,"bad"quote,eng\n2,,,Bob,,Fine,eng\n'))
    assert rows[0].draft is None
    assert rows[0].rejection is not None
    assert rows[0].rejection.startswith("bad CSV")
    assert rows[-1].draft is not None
    assert rows[-1].draft.title == "Fine"


def test_a_row_without_a_numeric_book_id_is_rejected(tmp_path: Path) -> None:
    rows = read(write(tmp_path, f"{HEADER}\nabc,,,Ann,,Fine,eng\n"))
    assert rows[0].rejection is not None
    assert "book_id" in rows[0].rejection


def test_a_row_becomes_a_draft_with_its_repairs_and_warnings(tmp_path: Path) -> None:
    line = '42,812971060,9.78081297106e+12,"Azar Nafisi, A. Translator",-720.0,Reading,fre'
    rows = read(write(tmp_path, f"{HEADER}\n{line}\n"))
    draft = rows[0].draft
    assert draft is not None
    assert draft.external_ref == "goodbooks:42"
    assert draft.isbn is None  # the check digit fails; isbn13 is never used
    assert draft.author_names == ("Azar Nafisi", "A. Translator")
    assert draft.publication_year == -720
    assert draft.language == "fr"
    assert len(rows[0].warnings) == 1


def test_the_required_columns_are_those_of_the_goodbooks_export() -> None:
    real = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "goodbooks-10k"
    header = (real / "books.csv").read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    assert set(REQUIRED_COLUMNS) <= set(header)
