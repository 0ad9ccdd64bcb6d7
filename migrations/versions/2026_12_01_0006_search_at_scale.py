"""search at scale: searches are always planned with their words

Revision ID: 0006
Revises: 0005

The app's driver prepares each statement once per connection and reuses it. After five
executions PostgreSQL may run a prepared statement with a generic plan, made without the
parameters' values, whenever that plan's estimated cost is no higher than the average of the
custom plans so far. A search's best plan depends on its words (a rare word: the GIN index; a
common one: an ordered walk that stops early), and a generic plan of a search cannot fold
``search_query(q)`` into a constant: it runs it on every row it looks at. A few common-word
searches on a connection were enough to switch the search statement to such a plan, about ten
times slower for every later search on that connection.

``search_query`` is IMMUTABLE, so a plan made with the values folds it into a constant and
never pays its cost. Declaring that cost very high (it is an SQL function: parsing and
running its body per row is expensive indeed) makes every generic plan of a search look far
more expensive than any custom plan, so PostgreSQL keeps planning each search with its words:
``plan_cache_mode = force_custom_plan`` for the statements that call ``search_query`` only,
whatever the driver, without a setting on every connection (which would also re-plan the
one-book read on every call).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# cpu_operator_cost (0.0025) per call: 2,500 cost units for each row a generic plan would run
# it on, against a few thousand units for a whole custom-planned search.
SEARCH_QUERY_COST = 1_000_000
DEFAULT_SQL_FUNCTION_COST = 100


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(f"ALTER FUNCTION search_query(text) COST {SEARCH_QUERY_COST}")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(f"ALTER FUNCTION search_query(text) COST {DEFAULT_SQL_FUNCTION_COST}")
