"""Dependency-injector container of the change feed."""

from __future__ import annotations

from dependency_injector import containers, providers

from library.changes.application.queries import ChangeFeed, ChangeSignal
from library.changes.infrastructure.reader import AsyncpgChangeReader
from shared.persistence.reads import ReadPool


class ChangesContainer(containers.DeclarativeContainer):
    """Builds the change feed; needs the read pool, and what wakes long polls (the events'
    NOTIFY, polling as a fallback)."""

    read_pool: providers.Dependency[ReadPool] = providers.Dependency()
    signal: providers.Dependency[ChangeSignal] = providers.Dependency()

    reader = providers.Singleton(AsyncpgChangeReader, pool=read_pool)
    feed = providers.Singleton(ChangeFeed, reader=reader, signal=signal)
