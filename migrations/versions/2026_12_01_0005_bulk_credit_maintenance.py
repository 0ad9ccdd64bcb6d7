"""bulk credit maintenance: a book is written once when its writer says its credits up front

Revision ID: 0005
Revises: 0004

Migration 0003 keeps ``books.credited_ids``, ``credited_names`` and ``search_document`` with
triggers. A bulk writer inserts the books, then their credits; the credits' statement trigger
then ran ``refresh_book_credits``, which UPDATEd every book just inserted: a second heap tuple
and a second set of entries in every index of ``books`` (two GIN indexes among them) for each
book. In the import (2,000 books a batch, auto_explain on PostgreSQL 15) the credits' INSERT
took 260 ms, 205 ms of it that refresh; the books' INSERT itself took 126 ms.

Now a writer may insert a book with ``credited_ids`` already set (the credit list it is about
to insert in the same transaction) and the book is written once:

- ``books_credited_names`` (BEFORE INSERT, per row, only when ``credited_ids`` is given and
  ``credited_names`` is not): looks the names up in ``authors``, in credit order. Triggers of
  one event fire in name order, so it runs before ``books_search_document``, which then builds
  the search document from these names. Writers that know the names (the seed) give both, and
  the trigger does not fire.
- ``refresh_book_credits`` skips the books whose ``credited_ids`` and ``credited_names`` are
  already what it computes. It still recomputes them from ``book_authors`` and ``authors`` for
  every book the statement touched, so an up-front list is only a hint: a wrong one is
  corrected by the credits' trigger, as before. ``search_document`` needs no comparison: the
  row trigger of 0003 builds it from the title and ``credited_names`` on every INSERT and on
  every UPDATE of either, so equal names mean an equal document.

The result is the same state 0003 produced (every book's three columns equal what
``refresh_book_credits`` computes); only the no-op second writes are gone. The other
writers (the API's credit changes, author renames) change the columns and are refreshed as
before.

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFRESH = """
CREATE OR REPLACE FUNCTION refresh_book_credits(book_ids uuid[]) RETURNS void
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
    WHERE books.id = c.id{skip};
END
"""
_SKIP_CURRENT = """
      AND (books.credited_ids IS DISTINCT FROM c.ids
           OR books.credited_names IS DISTINCT FROM c.names)"""

_AUTHOR_NAMES = """
CREATE FUNCTION author_names(author_ids uuid[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(
    (SELECT array_agg(a.name ORDER BY array_position(author_ids, a.id))
     FROM authors a WHERE a.id = ANY(author_ids)),
    '{}'
)
"""
# A simple expression for PL/pgSQL: the SQL function keeps its plan for the statement, so a
# row costs about 15 us (an ARRAY(SELECT ...) run by the trigger itself cost 50-60 us).
_NAMES_FUNCTION = """
CREATE FUNCTION books_credited_names_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.credited_names := author_names(NEW.credited_ids);
    RETURN NEW;
END $$
"""
_NAMES_TRIGGER = """
CREATE TRIGGER books_credited_names
BEFORE INSERT ON books
FOR EACH ROW
WHEN (NEW.credited_ids <> '{}' AND NEW.credited_names = '{}')
EXECUTE FUNCTION books_credited_names_on_insert()
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(_REFRESH.format(skip=_SKIP_CURRENT))
    op.execute(_AUTHOR_NAMES)
    op.execute(_NAMES_FUNCTION)
    op.execute(_NAMES_TRIGGER)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER books_credited_names ON books")
    op.execute("DROP FUNCTION books_credited_names_on_insert()")
    op.execute("DROP FUNCTION author_names(uuid[])")
    op.execute(_REFRESH.format(skip=""))
