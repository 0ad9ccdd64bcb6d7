"""Read-your-writes across a streaming replica: WAL positions (LSNs) and where a request's
stand while it is served (docs/operations.md "Read replica").

A write answers ``Commit-LSN``, the primary's WAL position after its commit; a client echoes
the latest it got on its next reads, which the replica then serves only once it has replayed
that far. The positions travel between the edge (``shared.web``) and the read and write paths
(``shared.persistence``) in two context variables of the request's task: neither side knows
the other.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

# The header, both ways: a write's position (response), the position a read must see (request).
COMMIT_LSN_HEADER = "Commit-LSN"

# pg_lsn's text form: two hexadecimal numbers of at most 32 bits, e.g. 0/16B3F48.
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")

# The position a read of this request must see (None: any replica within the lag bound).
read_after: ContextVar[int | None] = ContextVar("library_read_after", default=None)
# The primary's position after this request's write committed (set only with a replica).
committed_at: ContextVar[str | None] = ContextVar("library_committed_at", default=None)


def parse_lsn(text: str) -> int:
    """The position of a pg_lsn's text form (ValueError when it is not one)."""
    found = _LSN.match(text.strip())
    if found is None:
        raise ValueError(f"not a WAL position (pg_lsn, e.g. 0/16B3F48): {text[:40]!r}")
    return (int(found.group(1), 16) << 32) | int(found.group(2), 16)


def format_lsn(position: int) -> str:
    """A position in pg_lsn's text form."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
