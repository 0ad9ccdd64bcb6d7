"""HTTP request and response bodies of the authors context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from library.authors.domain.model import BIO_MAX_LENGTH, NAME_MAX_LENGTH, valid_name
from shared.kernel.values import EARLIEST_YEAR, NON_BLANK_TEXT_PATTERN, TEXT_PATTERN
from shared.web.api import WHOLE_NUMBER, RequestModel, domain_rule, nfc, omitted_not_null

Name = Annotated[
    str,
    BeforeValidator(nfc),
    Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        json_schema_extra={"pattern": NON_BLANK_TEXT_PATTERN},
    ),
    AfterValidator(domain_rule(valid_name)),
]
Bio = Annotated[
    str,
    BeforeValidator(nfc),
    Field(max_length=BIO_MAX_LENGTH, json_schema_extra={"pattern": TEXT_PATTERN}),
]
LifeYear = Annotated[
    int,
    Field(
        strict=True, ge=EARLIEST_YEAR, le=9999, description="Negative for BCE; not in the future."
    ),
    WHOLE_NUMBER,
]


class AuthorCreate(RequestModel):
    """A new author."""

    name: Name
    birth_year: LifeYear | None = None
    death_year: LifeYear | None = None
    bio: Bio | None = None


class AuthorPatch(RequestModel):
    """Fields to change; absent fields stay as they are, null clears an optional field."""

    name: Name | SkipJsonSchema[None] = Field(default=None, json_schema_extra=omitted_not_null)
    birth_year: LifeYear | None = None
    death_year: LifeYear | None = None
    bio: Bio | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("name cannot be null")
        return value


class AuthorOut(BaseModel):
    """An author."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    birth_year: int | None
    death_year: int | None
    bio: str | None
    created_at: datetime
    updated_at: datetime
    version: int
