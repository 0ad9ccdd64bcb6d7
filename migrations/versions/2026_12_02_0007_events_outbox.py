"""events outbox: every write's domain events, in its transaction, ordered for the change feed

Revision ID: 0007
Revises: 0006

``events`` is the transactional outbox (docs/events.md): one row per domain event, written in
the transaction of its change. ``xid`` is that transaction's id (``pg_current_xact_id()`` as a
bigint: xid8 has no cast to bigint, its text form is the number); the change feed orders
events by ``(xid, id)`` and shows only those whose ``xid`` is below the oldest transaction
still running, so a position once passed is never filled in later.

The server's role reads and writes these rows like every table's (the default privileges of
``library migrate``'s grant cover tables created later, and the identity's sequence).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = (
    "author.created",
    "author.updated",
    "author.deleted",
    "book.created",
    "book.updated",
    "book.deleted",
)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "xid",
            sa.BigInteger(),
            server_default=sa.text("CAST(CAST(pg_current_xact_id() AS text) AS bigint)"),
            nullable=False,
        ),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "type IN (" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + ")",
            name=op.f("ck_events_known_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_position", "events", ["xid", "id"], unique=False)
    op.create_index("ix_events_resource", "events", ["resource_id", "xid", "id"], unique=False)
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_index("ix_events_resource", table_name="events")
    op.drop_index("ix_events_position", table_name="events")
    op.drop_table("events")
