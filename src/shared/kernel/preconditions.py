"""Conditional writes (RFC 9110 If-Match) in domain terms: which versions a client accepts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from shared.kernel.errors import ConcurrentUpdateError, PreconditionFailedError


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The versions a write may apply to; ``versions=None`` (``If-Match: *``) accepts any."""

    versions: frozenset[int] | None

    def check(self, kind: str, resource_id: object, version: int) -> None:
        """PreconditionFailedError unless ``version`` is one the client accepts."""
        if self.versions is not None and version not in self.versions:
            raise PreconditionFailedError.of(kind, resource_id)

    @contextmanager
    def guard(self, kind: str, resource_id: object) -> Iterator[None]:
        """Inside: a write that finds its row changed since it was read (by the version compared
        in the UPDATE/DELETE itself) fails the client's precondition: 412, not 409."""
        try:
            yield
        except ConcurrentUpdateError:
            if self.versions is None:
                raise
            raise PreconditionFailedError.of(kind, resource_id) from None


ANY_VERSION: Final = IfMatch(versions=None)
