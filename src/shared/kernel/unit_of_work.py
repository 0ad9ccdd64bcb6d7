"""The unit-of-work port: the transaction boundary of one use case (framework-free)."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class UnitOfWork(Protocol):
    """``async with uow:`` opens a transaction; only ``commit()`` makes its work permanent.

    Leaving the block without committing (normally or by an exception) rolls everything back.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the work of this unit permanent."""
        ...
