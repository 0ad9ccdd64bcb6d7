"""search: accent-insensitive keys, a books search document kept by triggers, GIN indexes

Revision ID: 0003
Revises: 0001

- ``search_key(text)``: lower(unaccent(text)), IMMUTABLE (``unaccent`` itself is only STABLE,
  because its dictionary could change), so indexes can be built on it.
- ``search_query(text)``: the words of a query as a prefix tsquery ("les miser" ->
  'les':* & 'miser':*), NULL when the query has no word; special characters cannot break it.
- ``books.credited_ids`` / ``books.credited_names``: the book's credits in order with the
  authors' names, and ``books.search_document``: the words of the title (weight A) and of
  the authors' names (weight B). Triggers on books, book_authors and authors keep them, in
  the writing transaction, so that neither context's code reads the other's tables: a book
  and its authors' names are one row, read in one statement.
- GIN indexes: the search document; trigrams of search_key(title) and search_key(name) (they
  replace the trigram indexes on the raw columns, which no query uses any more).

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTIONS = r"""
CREATE FUNCTION search_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN lower({schema}.unaccent('{schema}.unaccent'::regdictionary, value));

CREATE FUNCTION search_query(query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT CASE WHEN count(*) > 0 THEN to_tsquery(
        'simple',
        string_agg(
            '''' || replace(replace(lexeme, '\', '\\'), '''', '\''') || ''':*', ' & '
        )
    ) END
    FROM unnest(to_tsvector('simple', search_key(query)));
END;

CREATE FUNCTION search_document(title text, author_names text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN setweight(to_tsvector('simple', coalesce(search_key(title), '')), 'A')
    || setweight(to_tsvector('simple', coalesce(search_key(author_names), '')), 'B');

CREATE FUNCTION refresh_book_credits(book_ids uuid[]) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    UPDATE books SET
        credited_ids = c.ids,
        credited_names = c.names,
        search_document = search_document(books.title, array_to_string(c.names, ' '))
    FROM (
        SELECT b.id,
               coalesce(array_agg(a.id ORDER BY k.position) FILTER (WHERE a.id IS NOT NULL),
                        '{{}}') AS ids,
               coalesce(array_agg(a.name ORDER BY k.position) FILTER (WHERE a.id IS NOT NULL),
                        '{{}}') AS names
        FROM unnest(book_ids) AS b(id)
        LEFT JOIN book_authors k ON k.book_id = b.id
        LEFT JOIN authors a ON a.id = k.author_id
        GROUP BY b.id
    ) AS c
    WHERE books.id = c.id;
END;

CREATE FUNCTION books_search_document_on_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document := search_document(NEW.title, array_to_string(NEW.credited_names, ' '));
    RETURN NEW;
END $$;

CREATE FUNCTION books_credits_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_book_credits(ARRAY(SELECT DISTINCT book_id FROM new_credits));
    RETURN NULL;
END $$;

CREATE FUNCTION books_credits_on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_book_credits(ARRAY(SELECT DISTINCT book_id FROM old_credits));
    RETURN NULL;
END $$;

CREATE FUNCTION books_credits_on_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_book_credits(
        ARRAY(SELECT book_id FROM new_credits UNION SELECT book_id FROM old_credits)
    );
    RETURN NULL;
END $$;

CREATE FUNCTION books_credits_on_rename() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_book_credits(ARRAY(
        SELECT DISTINCT k.book_id FROM book_authors k
        JOIN new_authors n ON n.id = k.author_id
        JOIN old_authors o ON o.id = n.id
        WHERE n.name IS DISTINCT FROM o.name
    ));
    RETURN NULL;
END $$;
"""

_TRIGGERS = """
CREATE TRIGGER books_search_document
BEFORE INSERT OR UPDATE OF title, credited_names ON books
FOR EACH ROW EXECUTE FUNCTION books_search_document_on_write();

CREATE TRIGGER book_authors_insert_refresh AFTER INSERT ON book_authors
REFERENCING NEW TABLE AS new_credits
FOR EACH STATEMENT EXECUTE FUNCTION books_credits_on_insert();

CREATE TRIGGER book_authors_delete_refresh AFTER DELETE ON book_authors
REFERENCING OLD TABLE AS old_credits
FOR EACH STATEMENT EXECUTE FUNCTION books_credits_on_delete();

CREATE TRIGGER book_authors_update_refresh AFTER UPDATE ON book_authors
REFERENCING OLD TABLE AS old_credits NEW TABLE AS new_credits
FOR EACH STATEMENT EXECUTE FUNCTION books_credits_on_update();

CREATE TRIGGER authors_rename_refresh AFTER UPDATE ON authors
REFERENCING OLD TABLE AS old_authors NEW TABLE AS new_authors
FOR EACH STATEMENT EXECUTE FUNCTION books_credits_on_rename();
"""


def _execute_each(statements: str) -> None:
    # asyncpg prepares each statement: one command per execute (they are separated by a blank line).
    for statement in statements.strip().split(";\n\n"):
        op.execute(statement)


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema = op.get_bind().scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'unaccent'"
        )
    )
    op.add_column(
        "books",
        sa.Column(
            "search_document",
            postgresql.TSVECTOR(),
            server_default=sa.text("''::tsvector"),
            nullable=False,
        ),
    )
    op.add_column(
        "books",
        sa.Column(
            "credited_ids",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.add_column(
        "books",
        sa.Column(
            "credited_names",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    _execute_each(_FUNCTIONS.format(schema=f'"{schema}"'))
    _execute_each(_TRIGGERS)
    op.execute("SELECT refresh_book_credits(ARRAY(SELECT id FROM books))")
    op.drop_index(
        "ix_books_title_trgm",
        table_name="books",
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.drop_index(
        "ix_authors_name_trgm",
        table_name="authors",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_books_search_document",
        "books",
        ["search_document"],
        postgresql_using="gin",
    )
    op.execute(
        "CREATE INDEX ix_books_title_key_trgm ON books USING gin (search_key(title) gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_authors_name_key_trgm ON authors USING gin (search_key(name) gin_trgm_ops)"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_authors_name_key_trgm", table_name="authors")
    op.drop_index("ix_books_title_key_trgm", table_name="books")
    op.drop_index("ix_books_search_document", table_name="books", postgresql_using="gin")
    op.create_index(
        "ix_authors_name_trgm",
        "authors",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_books_title_trgm",
        "books",
        ["title"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.execute("DROP TRIGGER authors_rename_refresh ON authors")
    op.execute("DROP TRIGGER book_authors_update_refresh ON book_authors")
    op.execute("DROP TRIGGER book_authors_delete_refresh ON book_authors")
    op.execute("DROP TRIGGER book_authors_insert_refresh ON book_authors")
    op.execute("DROP TRIGGER books_search_document ON books")
    op.execute("DROP FUNCTION books_credits_on_rename()")
    op.execute("DROP FUNCTION books_credits_on_update()")
    op.execute("DROP FUNCTION books_credits_on_delete()")
    op.execute("DROP FUNCTION books_credits_on_insert()")
    op.execute("DROP FUNCTION books_search_document_on_write()")
    op.execute("DROP FUNCTION refresh_book_credits(uuid[])")
    op.execute("DROP FUNCTION search_document(text, text)")
    op.execute("DROP FUNCTION search_query(text)")
    op.execute("DROP FUNCTION search_key(text)")
    op.drop_column("books", "credited_names")
    op.drop_column("books", "credited_ids")
    op.drop_column("books", "search_document")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
