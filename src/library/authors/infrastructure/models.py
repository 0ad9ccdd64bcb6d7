"""SQLAlchemy persistence model of the authors context."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from library.authors.domain.model import BIO_MAX_LENGTH, NAME_MAX_LENGTH
from shared.kernel.values import EARLIEST_YEAR
from shared.persistence.db import Base


class AuthorRow(Base):
    """A row of ``authors``."""

    __tablename__ = "authors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    birth_year: Mapped[int | None]
    death_year: Mapped[int | None]
    bio: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    version: Mapped[int] = mapped_column(server_default=text("1"))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads a dict)
    __table_args__ = (
        CheckConstraint(
            f"char_length(name) BETWEEN 1 AND {NAME_MAX_LENGTH} AND name = btrim(name)",
            name="name_trimmed_length",
        ),
        CheckConstraint(f"char_length(bio) <= {BIO_MAX_LENGTH}", name="bio_length"),
        CheckConstraint(f"birth_year >= {EARLIEST_YEAR}", name="birth_year_range"),
        CheckConstraint(f"death_year >= {EARLIEST_YEAR}", name="death_year_range"),
        CheckConstraint("death_year >= birth_year", name="death_after_birth"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_authors_name_id", "name", "id"),
        # Search (migration 0003): accent- and case-insensitive substrings and typos.
        Index(
            "ix_authors_name_key_trgm",
            func.search_key(name).label("name_key"),
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ),
    )
