"""events_pruned: the last feed position retention deleted (the feed refuses older cursors)

Revision ID: 0009
Revises: 0008

Retention (the relay's prune) deletes events older than ``LIBRARY_EVENTS_RETENTION_DAYS``. A
feed reader whose cursor is before a deleted event would skip it without knowing; the prune now
records the last position it deleted here, in its transaction, and ``GET /changes`` answers
410 (``cursor-expired``) to a cursor before it (docs/events.md, "Retention"). One row, none
before the first prune.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "events_pruned",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("singleton", name=op.f("ck_events_pruned_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_events_pruned")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("events_pruned")
