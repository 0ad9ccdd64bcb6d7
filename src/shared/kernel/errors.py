"""The error vocabulary: raised by domains and services, mapped to HTTP in one place.

Nothing here knows about HTTP; ``shared.web.problems`` turns each base class into an RFC 9457
problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule about one input field: where it is and what is wrong."""

    loc: tuple[str | int, ...]
    msg: str


class DomainError(Exception):
    """Base of every error raised on purpose; ``code`` names the problem type."""

    code: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "The request could not be carried out"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)


class NotFoundError(DomainError):
    """The addressed resource does not exist."""

    code = "not-found"
    title = "Resource not found"


class ConflictError(DomainError):
    """The request conflicts with the current state (a duplicate, a dependent resource)."""

    code = "conflict"
    title = "Conflict with the current state"


class RuleViolationError(DomainError):
    """The input breaks a business rule (the request is well-formed but not acceptable)."""

    code = "validation-error"
    title = "Invalid request"

    @classmethod
    def on_field(cls, field: str | tuple[str | int, ...], msg: str) -> Self:
        """A violation of one field's rule; ``field`` names the input field (or a full location)."""
        loc = (field,) if isinstance(field, str) else field
        return cls(msg, errors=[FieldError(loc=loc, msg=msg)])


class InvalidCursorError(RuleViolationError):
    """A page cursor that this service did not issue, or issued for another query."""

    code = "invalid-cursor"
    title = "Invalid page cursor"


class ConcurrentUpdateError(ConflictError):
    """Another request changed or removed the resource between our read and our write."""

    code = "concurrent-update"
    title = "Modified concurrently"

    @classmethod
    def of(cls, kind: str, resource_id: object) -> ConcurrentUpdateError:
        """The error for resource ``kind`` (e.g. "Book") with id ``resource_id``."""
        return cls(f"{kind} {resource_id} was changed or removed by another request; reload it.")


class PreconditionFailedError(DomainError):
    """The client's If-Match names a version the resource no longer (or never) had."""

    code = "precondition-failed"
    title = "Precondition failed"

    @classmethod
    def of(cls, kind: str, resource_id: object) -> PreconditionFailedError:
        """The error for resource ``kind`` (e.g. "Book") with id ``resource_id``."""
        return cls(
            f"{kind} {resource_id} is not at the version If-Match names: it was changed; "
            "GET it again and retry with its current ETag."
        )


class PreconditionRequiredError(DomainError):
    """A conditional-only request (PATCH, DELETE) came without If-Match."""

    code = "precondition-required"
    title = "Precondition required"


class IdempotencyKeyInUseError(ConflictError):
    """A request with the same Idempotency-Key is still being processed."""

    code = "idempotency-key-in-use"
    title = "Request with this Idempotency-Key in progress"


class IdempotencyKeyReusedError(RuleViolationError):
    """The Idempotency-Key was already used for a request with another body."""

    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"


class GoneError(DomainError):
    """What the request asks for existed and was deleted for good (by retention)."""

    code = "gone"
    title = "Gone"


class ServiceUnavailableError(DomainError):
    """A dependency (the database) cannot serve now; the client may retry later."""

    code = "service-unavailable"
    title = "Service unavailable"
