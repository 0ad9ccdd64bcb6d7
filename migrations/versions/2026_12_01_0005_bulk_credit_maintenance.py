"""bulk credit maintenance: a book inserted with its credits' copy is written once

Revision ID: 0005
Revises: 0004

Migration 0003 keeps ``books.credited_ids``, ``credited_names`` and ``search_document`` with
triggers. A bulk writer inserts the books, then their credits; the credits' statement trigger
then ran ``refresh_book_credits``, which UPDATEd every book just inserted: a second heap tuple
and a second set of entries in every index of ``books`` (two GIN indexes among them) for each
book. In the import (2,000 books a batch, auto_explain on PostgreSQL 15) the credits' INSERT
took 260 ms, 205 ms of it that refresh; the books' INSERT itself took 126 ms.

Now a writer may insert a book with its copy already set (``credited_ids`` and
``credited_names``: the credits it is about to insert in the same transaction) and the book is
written once:

- ``refresh_book_credits`` skips the books whose ``credited_ids`` and ``credited_names`` are
  already what it computes. It still recomputes them from ``book_authors`` and ``authors`` for
  every book the statement touched, so a copy given up front is only a claim: a wrong one is
  corrected by the credits' trigger, as before. ``search_document`` needs no comparison: the
  row trigger of 0003 builds it from the title and ``credited_names`` on every INSERT and on
  every UPDATE of either, so equal names mean an equal document.
- ``credit_copies(book_ids, author_ids, positions)``: the copy of credit rows given as arrays
  (as the bulk writers send them), one row per book, set-based. The books' bulk insert joins
  it, so the books' code gets the authors' names from the database, as the triggers do,
  without reading the authors' table itself. (A BEFORE INSERT row trigger looking the names
  up cost 17-30 us a book, as much as computing the search document; the join costs a few
  ms a batch.)

(The seed needs neither: it loads the copy with the rows and keeps the credits' trigger off
while it loads, so it never wrote a book twice.)

After: books INSERT 113-148 ms, credits INSERT 45-67 ms a batch (no UPDATE of ``books`` at
all); ``make bench-import``: 10k rows in 2.15 s instead of 4.08 s, 100k in 21 s instead of 51 s.

The result is the state 0003 produced (every book's three columns equal what
``refresh_book_credits`` computes); only the no-op second writes are gone. The other writers
(the API's credit changes, author renames) change the columns and are refreshed as before.

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

_CREDIT_COPIES = """
CREATE FUNCTION credit_copies(book_ids uuid[], author_ids uuid[], positions smallint[])
RETURNS TABLE (book_id uuid, credited_ids uuid[], credited_names text[])
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT c.book_id, array_agg(a.id ORDER BY c.position), array_agg(a.name ORDER BY c.position)
    FROM unnest(book_ids, author_ids, positions) AS c(book_id, author_id, position)
    JOIN authors a ON a.id = c.author_id
    GROUP BY c.book_id;
END
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(_REFRESH.format(skip=_SKIP_CURRENT))
    op.execute(_CREDIT_COPIES)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP FUNCTION credit_copies(uuid[], uuid[], smallint[])")
    op.execute(_REFRESH.format(skip=""))
