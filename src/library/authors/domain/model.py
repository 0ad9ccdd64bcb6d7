"""The Author aggregate and its rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from shared.kernel.errors import RuleViolationError
from shared.kernel.values import UNSET, Unset, check_year, clean_text

NAME_MAX_LENGTH = 300
BIO_MAX_LENGTH = 10_000


def valid_name(value: str) -> str:
    """An author's name: trimmed, NFC, 1-300 characters."""
    return clean_text("name", value, max_length=NAME_MAX_LENGTH)


def valid_bio(value: str | None) -> str | None:
    """A biography of at most 10,000 characters; blank means none."""
    if value is None or not value.strip():
        return None
    return clean_text("bio", value, max_length=BIO_MAX_LENGTH)


def valid_life_year(field: str, value: int | None, *, now: datetime) -> int | None:
    """A birth or death year: not in the future; negative for BCE."""
    return None if value is None else check_year(field, value, latest=now.year)


def _check_lifespan(birth_year: int | None, death_year: int | None) -> None:
    if birth_year is not None and death_year is not None and death_year < birth_year:
        raise RuleViolationError.on_field(
            "death_year", f"death_year ({death_year}) must not be before birth_year ({birth_year})"
        )


@dataclass(eq=False, kw_only=True)
class Author:
    """A person credited on books. Identity is ``id``; ``version`` grows with every change."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    name: str
    birth_year: int | None = None
    death_year: int | None = None
    bio: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @classmethod
    def register(
        cls,
        *,
        name: str,
        birth_year: int | None,
        death_year: int | None,
        bio: str | None,
        now: datetime,
    ) -> Author:
        """A new author, after checking every rule."""
        birth = valid_life_year("birth_year", birth_year, now=now)
        death = valid_life_year("death_year", death_year, now=now)
        _check_lifespan(birth, death)
        return cls(
            name=valid_name(name),
            birth_year=birth,
            death_year=death,
            bio=valid_bio(bio),
            created_at=now,
            updated_at=now,
        )

    def revise(
        self,
        *,
        name: str | Unset = UNSET,
        birth_year: int | Unset | None = UNSET,
        death_year: int | Unset | None = UNSET,
        bio: str | Unset | None = UNSET,
        now: datetime,
    ) -> bool:
        """Apply the given changes (UNSET leaves a field as it is); True if anything changed."""
        new_name = self.name if name is UNSET else valid_name(name)
        new_birth = (
            self.birth_year
            if birth_year is UNSET
            else valid_life_year("birth_year", birth_year, now=now)
        )
        new_death = (
            self.death_year
            if death_year is UNSET
            else valid_life_year("death_year", death_year, now=now)
        )
        new_bio = self.bio if bio is UNSET else valid_bio(bio)
        _check_lifespan(new_birth, new_death)
        before = (self.name, self.birth_year, self.death_year, self.bio)
        after = (new_name, new_birth, new_death, new_bio)
        if before == after:
            return False
        self.name, self.birth_year, self.death_year, self.bio = after
        self.updated_at = now
        return True
