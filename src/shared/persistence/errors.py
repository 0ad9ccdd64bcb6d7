"""Driver errors in the kernel's terms: what a database failure means to a client.

Adapters and the composition root call ``translate``; nothing above persistence needs to know
SQLAlchemy's or asyncpg's exception types.
"""

from __future__ import annotations

import socket
from typing import Any

import asyncpg
import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shared.kernel.errors import DomainError, RuleViolationError, ServiceUnavailableError

log = structlog.get_logger("library.db")


class DatabaseUnavailableError(ServiceUnavailableError):
    """No connection to the database could be opened (down, restarting, refusing, too busy)."""

    code = "database-unavailable"
    title = "Service unavailable"


def connection_refused(cause: BaseException) -> DatabaseUnavailableError:
    """The 503 for a connection that could not be opened, with its cause logged once.

    The client sees only a 503; the operator needs the cause (wrong password, no such
    database, refused...). Driver messages carry no password.
    """
    log.warning("cannot connect to the database", error=type(cause).__name__, reason=str(cause))
    return DatabaseUnavailableError("The database is unavailable or overloaded; retry later.")


def _driver_error(exc: DBAPIError | asyncpg.PostgresError) -> Any:
    if isinstance(exc, asyncpg.PostgresError):  # sent on asyncpg itself
        return exc
    # SQLAlchemy wraps the asyncpg exception: the DBAPI adapter's __cause__ is asyncpg's own.
    return getattr(exc.orig, "__cause__", None) or exc.orig


def violated_constraint(exc: IntegrityError | asyncpg.PostgresError) -> str | None:
    """The name of the constraint an IntegrityError broke, when the driver reports it."""
    name = getattr(_driver_error(exc), "constraint_name", None)
    return name if isinstance(name, str) else None


def sqlstate(exc: DBAPIError | asyncpg.PostgresError) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error (23505 unique, 23503 foreign key, ...)."""
    code = getattr(_driver_error(exc), "sqlstate", None)
    return code if isinstance(code, str) else None


# The database cannot serve this now, and a retry later may succeed: class 08 connection
# exceptions, 53 insufficient resources, 57 operator intervention (57014 is a statement
# cancelled by statement_timeout, 57P01 a terminated backend), 55P03 lock_timeout,
# 40001 serialization failure, 40P01 deadlock.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
TRANSIENT_SQLSTATES = frozenset({"55P03", "40001", "40P01"})


def is_transient(exc: DBAPIError) -> bool:
    """True when the database refused for now (timeout, overload, shutdown), not for good."""
    return _transient_code(sqlstate(exc))


def _transient_code(code: str | None) -> bool:
    return code is not None and (
        code[:2] in TRANSIENT_SQLSTATE_CLASSES or code in TRANSIENT_SQLSTATES
    )


# 23503 foreign_key_violation; 23001 restrict_violation (an ON DELETE RESTRICT key).
REFERENCE_VIOLATIONS = frozenset({"23503", "23001"})
UNIQUE_VIOLATION = "23505"


# What asyncpg raises on a connection that died under us (a killed backend, a restarted server;
# a connection whose backend was killed under it can leave asyncpg's protocol mid-state).
DEAD_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
    ConnectionResetError,
    BrokenPipeError,
)

# What a failure to reach the database, or a driver refusal, can be raised as.
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # A protocol left mid-state by a backend killed under it ("cannot switch to state ...").
    asyncpg.InternalClientError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


def translate(exc: BaseException) -> DomainError | None:
    """The kernel error a driver or pool failure means, or None when it is a bug.

    A lost or refused connection, a pool timeout, or a transient refusal (a timeout, overload,
    shutdown) is a DatabaseUnavailableError (503); a value the database cannot store is a
    RuleViolationError (422).
    """
    if isinstance(exc, DatabaseUnavailableError):
        return exc
    unavailable = DatabaseUnavailableError(
        "The database is unavailable or overloaded; retry later."
    )
    if isinstance(exc, PoolTimeoutError | ConnectionError | TimeoutError | socket.gaierror):
        return unavailable
    if isinstance(
        exc, asyncpg.InterfaceError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError
    ):
        return unavailable
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or is_transient(exc))
    ):
        return unavailable
    if isinstance(exc, asyncpg.PostgresError) and _transient_code(exc.sqlstate):
        return unavailable
    if isinstance(exc, DataError | asyncpg.DataError):
        return RuleViolationError(
            "The request holds a value the database cannot store (out of range or malformed)."
        )
    return None
