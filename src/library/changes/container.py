"""Dependency-injector container of the change feed."""

from __future__ import annotations

from dependency_injector import containers, providers

from library.changes.application.queries import ChangeFeed
from library.changes.infrastructure.reader import AsyncpgChangeReader, PollingSignal
from shared.persistence.reads import ReadPool


class ChangesContainer(containers.DeclarativeContainer):
    """Builds the change feed; needs the read pool."""

    read_pool: providers.Dependency[ReadPool] = providers.Dependency()

    reader = providers.Singleton(AsyncpgChangeReader, pool=read_pool)
    signal = providers.Singleton(PollingSignal)
    feed = providers.Singleton(ChangeFeed, reader=reader, signal=signal)
