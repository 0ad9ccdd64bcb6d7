"""Building blocks for HTTP schemas: strict request models, domain rules as validators."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from shared.errors import RuleViolationError

T = TypeVar("T")
V = TypeVar("V")


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (no mass assignment), strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def values(self) -> dict[str, Any]:
        """Every field's validated value (as validated, not re-serialised)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent (a partial update's changes)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(description="Opaque; null on the last page.")


def nfc(value: object) -> object:
    """Unicode NFC before any length check, so lengths count characters as the domain does."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def domain_rule(rule: Callable[[V], T]) -> Callable[[V], T]:
    """Run a domain rule as a pydantic validator, so its message lands on the field's location."""

    def validate(value: V) -> T:
        try:
            return rule(value)
        except RuleViolationError as exc:
            raise PydanticCustomError("domain_rule", exc.detail) from None

    return validate
