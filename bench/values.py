"""Statement parameters as JSON: UUIDs, datetimes and dates keep their type across processes."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def dump(value: Any) -> Any:
    """``value`` as plain JSON, with UUIDs, datetimes and dates tagged so ``load`` restores them."""
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    return value


def load(value: Any) -> Any:
    """The inverse of ``dump`` (lists stay lists)."""
    if isinstance(value, list):
        return [load(v) for v in value]
    if isinstance(value, dict):
        if "$uuid" in value:
            return uuid.UUID(value["$uuid"])
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
        if "$decimal" in value:
            return Decimal(value["$decimal"])
        return {k: load(v) for k, v in value.items()}
    return value


_PGBENCH_VARIABLE = re.compile(r":([A-Za-z_])")


def sql_literal(value: Any) -> str:
    """``value`` as a PostgreSQL literal (for pgbench scripts; standard_conforming_strings on)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(sql_literal(v) for v in value) + "]"
    text = value.isoformat() if isinstance(value, datetime | date) else str(value)
    literal = "'" + text.replace("'", "''") + "'"
    if _PGBENCH_VARIABLE.search(literal) is None:
        return literal
    # pgbench reads ``:name`` as one of its variables even inside a string (a JSON document's
    # ``"key":null``): such a colon is concatenated in, where pgbench sees ``':'`` instead.
    return "(" + _PGBENCH_VARIABLE.sub(lambda m: "' || ':' || '" + m.group(1), literal) + ")"
