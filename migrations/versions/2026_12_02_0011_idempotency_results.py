"""idempotency results: a key stores the use case's result, not an HTTP response

Revision ID: 0011
Revises: 0010

``idempotency_keys`` kept the response a POST gave (``status``, ``body``, ``headers``); the
use case rendered it. Now the use case returns a plain result and the route builds the response
from it, fresh or replayed, the same way: a key stores the result (``result``, as the use case's
ResultCodec writes it), which is the created resource's document, the very JSON the old ``body``
held. So the rows are converted, not dropped: a client retrying across the deploy, within the
key's 24 hours, still gets its original book or author, not a second one.

- upgrade: ``result`` is ``body`` parsed (every stored response was a 201 whose Location and
  ETag follow from the document: the scope's path plus ``id``, and ``version``);
- downgrade: ``body`` is the document written back as the API writes it (compact, its fields in
  the schema's order: books or authors, told apart by the scope's path), ``status`` 201,
  ``headers`` its Location and ETag: what the previous release stored, byte for byte.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _object(members: Sequence[tuple[str, str]]) -> str:
    """SQL for the compact JSON text of an object: ``members`` are (name, SQL of the member's
    JSON text), in the order they are written (jsonb keeps neither order nor spacing)."""
    written = " || ',' || ".join(f"'\"{name}\":' || {value}" for name, value in members)
    return f"'{{' || {written} || '}}'"


def _members(document: str, *names: str) -> list[tuple[str, str]]:
    # A jsonb scalar's own text is compact JSON already ("...", 12, null).
    return [(name, f"({document} -> '{name}')::text") for name in names]


# A book's authors in credit order, each {"id", "name"}.
_CREDITS = (
    "(SELECT '[' || coalesce(string_agg("
    + _object(_members("credit", "id", "name"))
    + ", ',' ORDER BY position), '') || ']'"
    " FROM jsonb_array_elements(result -> 'authors') WITH ORDINALITY AS c(credit, position))"
)
_STAMPS = ("created_at", "updated_at", "version")
_BOOK_BODY = _object(
    [
        *_members("result", "id", "title"),
        ("authors", _CREDITS),
        *_members("result", "isbn13", "publication_year", "language", *_STAMPS),
    ]
)
_AUTHOR_BODY = _object(
    _members("result", "id", "name", "birth_year", "death_year", "bio", *_STAMPS)
)
_PATH = "split_part(scope, ' ', 2)"  # a scope is "POST <path> <owner>"


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("ALTER TABLE idempotency_keys ADD COLUMN result JSONB")
    op.execute("UPDATE idempotency_keys SET result = body::jsonb")
    op.execute("ALTER TABLE idempotency_keys ALTER COLUMN result SET NOT NULL")
    op.execute(
        "ALTER TABLE idempotency_keys DROP COLUMN status, DROP COLUMN body, DROP COLUMN headers"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(
        "ALTER TABLE idempotency_keys ADD COLUMN status SMALLINT, ADD COLUMN body TEXT,"
        " ADD COLUMN headers JSONB"
    )
    op.execute(
        "UPDATE idempotency_keys SET status = 201,"
        f" body = CASE WHEN {_PATH} LIKE '%/books' THEN {_BOOK_BODY} ELSE {_AUTHOR_BODY} END,"
        " headers = jsonb_build_object("
        f"'Location', {_PATH} || '/' || (result ->> 'id'),"
        " 'ETag', '\"' || (result ->> 'version') || '\"')"
    )
    for column in ("status", "body", "headers"):
        op.execute(f"ALTER TABLE idempotency_keys ALTER COLUMN {column} SET NOT NULL")
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN result")
