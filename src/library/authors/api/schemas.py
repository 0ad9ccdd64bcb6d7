"""HTTP request and response bodies of the authors context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from library.authors.domain.model import BIO_MAX_LENGTH, NAME_MAX_LENGTH, valid_name
from shared.kernel.values import EARLIEST_YEAR
from shared.web.api import RequestModel, domain_rule, nfc

Name = Annotated[
    str,
    BeforeValidator(nfc),
    Field(min_length=1, max_length=NAME_MAX_LENGTH),
    AfterValidator(domain_rule(valid_name)),
]
Bio = Annotated[str, BeforeValidator(nfc), Field(max_length=BIO_MAX_LENGTH)]
LifeYear = Annotated[
    int,
    Field(
        strict=True, ge=EARLIEST_YEAR, le=9999, description="Negative for BCE; not in the future."
    ),
]


class AuthorCreate(RequestModel):
    """A new author."""

    name: Name
    birth_year: LifeYear | None = None
    death_year: LifeYear | None = None
    bio: Bio | None = None


class AuthorPatch(RequestModel):
    """Fields to change; absent fields stay as they are, null clears an optional field."""

    name: Name | None = None
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
