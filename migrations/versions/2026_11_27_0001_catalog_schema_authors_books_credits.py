"""catalog schema: authors, books, credits

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Trigram indexes serve the case-insensitive substring searches (ILIKE '%q%').
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "authors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("death_year", sa.Integer(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("birth_year >= -9999", name=op.f("ck_authors_birth_year_range")),
        sa.CheckConstraint("char_length(bio) <= 10000", name=op.f("ck_authors_bio_length")),
        sa.CheckConstraint(
            "char_length(name) BETWEEN 1 AND 300 AND name = btrim(name)",
            name=op.f("ck_authors_name_trimmed_length"),
        ),
        sa.CheckConstraint("death_year >= -9999", name=op.f("ck_authors_death_year_range")),
        sa.CheckConstraint("death_year >= birth_year", name=op.f("ck_authors_death_after_birth")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_authors_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authors")),
    )
    op.create_index("ix_authors_name_id", "authors", ["name", "id"], unique=False)
    op.create_index(
        "ix_authors_name_trgm",
        "authors",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_table(
        "books",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("isbn13", sa.String(length=13), nullable=True),
        sa.Column("publication_year", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("isbn13 ~ '^97[89][0-9]{10}$'", name=op.f("ck_books_isbn13_digits")),
        sa.CheckConstraint(
            "char_length(title) BETWEEN 1 AND 500 AND title = btrim(title)",
            name=op.f("ck_books_title_trimmed_length"),
        ),
        sa.CheckConstraint(
            "publication_year >= -9999", name=op.f("ck_books_publication_year_range")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_books_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_books")),
        sa.UniqueConstraint("isbn13", name=op.f("uq_books_isbn13")),
    )
    op.create_index("ix_books_created_at_id", "books", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_books_language"), "books", ["language"], unique=False)
    op.create_index(op.f("ix_books_publication_year"), "books", ["publication_year"], unique=False)
    op.create_index("ix_books_title_id", "books", ["title", "id"], unique=False)
    op.create_index(
        "ix_books_title_trgm",
        "books",
        ["title"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_books_year_last_asc_id",
        "books",
        [sa.literal_column("coalesce(publication_year, 2147483647)"), "id"],
        unique=False,
    )
    op.create_index(
        "ix_books_year_last_desc_id",
        "books",
        [sa.literal_column("coalesce(publication_year, -2147483648)"), "id"],
        unique=False,
    )
    op.create_table(
        "book_authors",
        sa.Column("book_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint(
            "position BETWEEN 0 AND 49", name=op.f("ck_book_authors_position_range")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["authors.id"],
            name=op.f("fk_book_authors_author_id_authors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["books.id"],
            name=op.f("fk_book_authors_book_id_books"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("book_id", "author_id", name=op.f("pk_book_authors")),
        sa.UniqueConstraint(
            "book_id",
            "position",
            deferrable=True,
            initially="DEFERRED",
            name=op.f("uq_book_authors_book_id_position"),
        ),
    )
    op.create_index(op.f("ix_book_authors_author_id"), "book_authors", ["author_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_book_authors_author_id"), table_name="book_authors")
    op.drop_table("book_authors")
    op.drop_index("ix_books_year_last_desc_id", table_name="books")
    op.drop_index("ix_books_year_last_asc_id", table_name="books")
    op.drop_index(
        "ix_books_title_trgm",
        table_name="books",
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.drop_index("ix_books_title_id", table_name="books")
    op.drop_index(op.f("ix_books_publication_year"), table_name="books")
    op.drop_index(op.f("ix_books_language"), table_name="books")
    op.drop_index("ix_books_created_at_id", table_name="books")
    op.drop_table("books")
    op.drop_index(
        "ix_authors_name_trgm",
        table_name="authors",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_authors_name_id", table_name="authors")
    op.drop_table("authors")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
