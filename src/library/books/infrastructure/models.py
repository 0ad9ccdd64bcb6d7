"""SQLAlchemy persistence model of the books context."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from library.books.domain.model import (
    EXTERNAL_REF_MAX_LENGTH,
    LANGUAGE_MAX_LENGTH,
    MAX_AUTHORS,
    TITLE_MAX_LENGTH,
)
from shared.kernel.values import EARLIEST_YEAR
from shared.persistence.db import Base

# Books without a year sort last in both directions: the year sorts on these expressions.
YEAR_LAST_ASC = 2_147_483_647
YEAR_LAST_DESC = -2_147_483_648


class BookRow(Base):
    """A row of ``books``."""

    __tablename__ = "books"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    isbn13: Mapped[str | None] = mapped_column(String(13), unique=True)
    publication_year: Mapped[int | None] = mapped_column(index=True)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX_LENGTH), index=True)
    # Where an imported book came from (``goodbooks:42``): a re-import recognises it by this.
    external_ref: Mapped[str | None] = mapped_column(String(EXTERNAL_REF_MAX_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    version: Mapped[int] = mapped_column(server_default=text("1"))
    # The words of the title and of the authors' names, maintained by database triggers
    # (migration 0003); only search queries read it, never the ORM.
    search_document: Mapped[str] = mapped_column(
        TSVECTOR, server_default=text("''::tsvector"), deferred=True, deferred_raiseload=True
    )
    # The credits in order with the authors' names, a copy kept by the same triggers: a book
    # and its authors' names are read in one statement, without asking the authors context.
    credited_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid), server_default=text("'{}'"), deferred=True, deferred_raiseload=True
    )
    credited_names: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'"), deferred=True, deferred_raiseload=True
    )

    credits: Mapped[list[BookAuthorRow]] = relationship(
        order_by="BookAuthorRow.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads a dict)
    __table_args__ = (
        CheckConstraint(
            f"char_length(title) BETWEEN 1 AND {TITLE_MAX_LENGTH} AND title = btrim(title)",
            name="title_trimmed_length",
        ),
        CheckConstraint("isbn13 ~ '^97[89][0-9]{10}$'", name="isbn13_digits"),
        CheckConstraint(f"publication_year >= {EARLIEST_YEAR}", name="publication_year_range"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_books_created_at_id", "created_at", "id"),
        Index("ix_books_title_id", "title", "id"),
        Index(
            "ix_books_year_last_asc_id",
            func.coalesce(publication_year, YEAR_LAST_ASC),
            "id",
        ),
        Index(
            "ix_books_year_last_desc_id",
            func.coalesce(publication_year, YEAR_LAST_DESC),
            "id",
        ),
        # Search (migration 0003): the document kept by triggers, and title substrings.
        Index("ix_books_search_document", "search_document", postgresql_using="gin"),
        Index(
            "ix_books_title_key_trgm",
            func.search_key(title).label("title_key"),
            postgresql_using="gin",
            postgresql_ops={"title_key": "gin_trgm_ops"},
        ),
    )


class BookAuthorRow(Base):
    """A credit: author ``author_id`` at ``position`` (0 is the primary author) on a book."""

    __tablename__ = "book_authors"

    book_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("books.id", ondelete="CASCADE"), primary_key=True
    )
    author_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("authors.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)

    __table_args__ = (
        # Deferred, so that re-ordering the credits of a book never collides half-way.
        UniqueConstraint("book_id", "position", deferrable=True, initially="DEFERRED"),
        CheckConstraint(f"position BETWEEN 0 AND {MAX_AUTHORS - 1}", name="position_range"),
    )


class CreditedAuthorNameRow(Base):
    """A row of ``credited_author_names``: the books' copy of an author's name, at a version.

    Kept from the authors' events (``author.created``, ``author.updated``) by the relay, so the
    books context learns of renames without reading the authors' table.
    """

    __tablename__ = "credited_author_names"

    author_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[int]
