"""no NOTIFY per write: the events_notify trigger is dropped

Revision ID: 0010
Revises: 0009

Migration 0008's statement trigger on ``events`` sent ``NOTIFY library_events`` from every
write transaction. PostgreSQL serialises the commits of notifying transactions (a lock held
through the commit's WAL flush), so concurrent writes committed one flush at a time: POST with
the outbox at 0.84 of POST before it (make bench-auth). The app now wakes its own relay and long
polls in process when a write with events commits, and a relay NOTIFYs other processes once per
delivered batch (docs/events.md, "Waking up").
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
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


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DROP TRIGGER events_notify ON events")
    op.execute("DROP FUNCTION events_notify()")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(_NOTIFY)
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_notify()"
    )
