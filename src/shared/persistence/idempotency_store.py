"""The SQLAlchemy adapter of the IdempotencyStore port, bound to a unit of work's session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Index,
    String,
    delete,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.kernel.errors import IdempotencyKeyInUseError
from shared.kernel.idempotency import KEY_MAX_LENGTH, KEY_TTL, StoredResult
from shared.persistence.db import Base

# Expired keys are deleted a few at a time by the writes themselves, so no job is needed and
# no write pays for a large backlog.
PURGE_BATCH = 100


class IdempotencyKeyRow(Base):
    """A row of ``idempotency_keys``: a key, its request's fingerprint, the result it got (as
    the use case's ResultCodec wrote it: no HTTP; the route builds the response)."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )


class SqlAlchemyIdempotencyStore:
    """Keys in ``idempotency_keys``, on the session (and so the transaction) of a unit of work.

    A transaction reserves its key with a transaction-scoped advisory lock: a second request with
    the same key finds the lock taken and is refused at once (409) instead of waiting; the lock
    is released when the first transaction ends, after its row has become visible.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, scope: str, key: str, now: datetime) -> tuple[str, StoredResult] | None:
        lock = func.pg_try_advisory_xact_lock(func.hashtextextended(f"{scope} {key}", 0))
        if not await self._session.scalar(select(lock)):
            raise IdempotencyKeyInUseError(
                "A request with this Idempotency-Key is still being processed; "
                "retry after it has finished."
            )
        row = await self._session.get(IdempotencyKeyRow, (scope, key), populate_existing=True)
        if row is None:
            return None
        if row.expires_at <= now:
            await self._session.delete(row)
            await self._session.flush()
            return None
        return row.fingerprint, row.result

    async def save(
        self, scope: str, key: str, fingerprint: str, result: StoredResult, now: datetime
    ) -> None:
        self._session.add(
            IdempotencyKeyRow(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                result=result,
                created_at=now,
                expires_at=now + KEY_TTL,
            )
        )
        await self._session.flush()
        await self.purge_expired(now, limit=PURGE_BATCH)

    async def purge_expired(self, now: datetime, *, limit: int | None = None) -> int:
        """Delete up to ``limit`` expired keys (all when None); the number deleted.

        Rows another transaction is deleting are skipped, so concurrent purges never wait.
        """
        expired = (
            select(IdempotencyKeyRow.scope, IdempotencyKeyRow.key)
            .where(IdempotencyKeyRow.expires_at <= now)
            .with_for_update(skip_locked=True)
            .limit(limit)
        )
        result = await self._session.execute(
            delete(IdempotencyKeyRow)
            .where(tuple_(IdempotencyKeyRow.scope, IdempotencyKeyRow.key).in_(expired))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
