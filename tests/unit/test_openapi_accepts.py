"""The OpenAPI document says exactly what the service accepts (issue 14): what may be left out
may not be null, and the text patterns it declares are the rules the domain applies."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from library.authors.api.schemas import AuthorCreate
from library.books.api.schemas import BookCreate, BookPatch
from library.books.domain.model import valid_language
from shared.kernel.errors import RuleViolationError
from shared.kernel.values import (
    LANGUAGE_TAG_PATTERN,
    NON_BLANK_TEXT_PATTERN,
    TEXT_PATTERN,
    clean_text,
)
from tools.openapi import openapi_text


@cache
def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = json.loads(openapi_text())["components"]["schemas"]
    return schemas


@pytest.mark.parametrize(
    ("schema", "field"),
    [("BookPatch", "title"), ("BookPatch", "author_ids"), ("AuthorPatch", "name")],
)
def test_patch_fields_that_may_not_be_null_are_not_nullable(schema: str, field: str) -> None:
    declared = _schemas()[schema]["properties"][field]
    assert "null" not in json.dumps(declared)
    assert field not in _schemas()[schema].get("required", [])


def test_a_nullable_patch_field_still_says_null() -> None:
    assert {"type": "null"} in _schemas()["BookPatch"]["properties"]["isbn"]["anyOf"]


def test_null_for_a_field_that_is_not_nullable_is_refused() -> None:
    with pytest.raises(ValidationError):
        BookPatch.model_validate_json('{"title": null}')


def test_a_year_written_with_a_zero_fraction_is_the_integer_json_schema_says_it_is() -> None:
    assert (
        AuthorCreate.model_validate_json('{"name": "A", "birth_year": 1929.0}').birth_year == 1929
    )
    book = BookCreate.model_validate_json(
        '{"title": "T", "author_ids": ["0b9c1d3e-1111-4222-8333-444455556666"], '
        '"publication_year": 1974.0}'
    )
    assert book.publication_year == 1974
    for refused in ('"1929"', "1929.5", "true"):
        with pytest.raises(ValidationError):
            AuthorCreate.model_validate_json(f'{{"name": "A", "birth_year": {refused}}}')


def _accepted(value: str) -> bool:
    try:
        clean_text("name", value, max_length=10_000)
    except RuleViolationError:
        return False
    return True


TEXT = st.text(st.sampled_from(["a", "é", " ", "\t", "\x1c", "\x85", "\u3000", "\x00", "\n"]))


@given(TEXT)
def test_the_non_blank_pattern_is_the_domains_rule(value: str) -> None:
    assert bool(re.search(NON_BLANK_TEXT_PATTERN, value)) == _accepted(value)


@given(st.text())
def test_the_text_pattern_refuses_nul_only(value: str) -> None:
    assert bool(re.search(TEXT_PATTERN, value)) == ("\x00" not in value)


@given(st.text(st.sampled_from(["e", "n", "U", "S", "1", "-", "_", ".", " ", "x"]), max_size=12))
def test_every_language_tag_the_service_accepts_has_the_documented_shape(value: str) -> None:
    try:
        valid_language(value)
    except RuleViolationError:
        return
    assert re.search(LANGUAGE_TAG_PATTERN, value), value
