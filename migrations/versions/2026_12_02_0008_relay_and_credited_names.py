"""relay: subscribers' positions, the books' copy of author names, NOTIFY; no rename trigger

Revision ID: 0008
Revises: 0007

- ``relay_positions``: how far each in-process subscriber of the outbox has got (the relay
  advances it after the subscriber handled the events; docs/events.md, "Relay").
- ``credited_author_names``: the books context's own copy of its credited authors' names,
  with the author's version, kept from ``author.created`` / ``author.updated`` events. Seeded
  here from ``authors``.
- ``authors_rename_refresh`` (migration 0003) is dropped: the books context no longer learns of
  a rename through a trigger reading the authors' table, but from ``author.updated``.
- ``events_notify``: a statement trigger that NOTIFYs ``library_events`` when events are
  written, so the relay and long polls wake at the commit (polling is the fallback).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFY = """
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('library_events', '');
    RETURN NULL;
END $$
"""
_RENAME_FUNCTION = """
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
END $$
"""
_RENAME_TRIGGER = """
CREATE TRIGGER authors_rename_refresh AFTER UPDATE ON authors
REFERENCING OLD TABLE AS old_authors NEW TABLE AS new_authors
FOR EACH STATEMENT EXECUTE FUNCTION books_credits_on_rename()
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "relay_positions",
        sa.Column("subscriber", sa.Text(), nullable=False),
        sa.Column("xid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name=op.f("pk_relay_positions")),
    )
    op.create_table(
        "credited_author_names",
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("author_id", name=op.f("pk_credited_author_names")),
    )
    op.execute(
        "INSERT INTO credited_author_names (author_id, name, version) "
        "SELECT id, name, version FROM authors"
    )
    op.execute("DROP TRIGGER authors_rename_refresh ON authors")
    op.execute("DROP FUNCTION books_credits_on_rename()")
    op.execute(_NOTIFY)
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_notify()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER events_notify ON events")
    op.execute("DROP FUNCTION events_notify()")
    op.execute(_RENAME_FUNCTION)
    op.execute(_RENAME_TRIGGER)
    op.drop_table("credited_author_names")
    op.drop_table("relay_positions")
