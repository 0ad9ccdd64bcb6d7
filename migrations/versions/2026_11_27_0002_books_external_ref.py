"""books.external_ref: the id of an imported book in its source catalog

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Nullable, no default: adding it rewrites nothing and takes the lock only briefly.
    op.add_column("books", sa.Column("external_ref", sa.String(length=200), nullable=True))
    op.create_unique_constraint(op.f("uq_books_external_ref"), "books", ["external_ref"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(op.f("uq_books_external_ref"), "books", type_="unique")
    op.drop_column("books", "external_ref")
