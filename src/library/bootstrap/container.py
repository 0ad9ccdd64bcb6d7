"""The root container: settings, database, and the two contexts wired to each other's facades."""

from __future__ import annotations

from dependency_injector import containers, providers

from library.authors.container import AuthorsContainer
from library.books.application.credited_names import CreditedNamesKeeper
from library.books.container import BooksContainer
from library.bootstrap.adapters import AuthorDirectoryAdapter, BookCatalogAdapter
from library.bootstrap.health import HealthCheck
from library.bootstrap.observability import Observability
from library.changes.container import ChangesContainer
from shared.messaging.nats import SUBSCRIBER as NATS
from shared.messaging.nats import NatsPublisher
from shared.observability.metrics import package_version
from shared.observability.tracing import tracer_provider_from_env
from shared.persistence.db import (
    create_engine,
    create_session_factory,
    server_settings,
)
from shared.persistence.driver import StatementObservers
from shared.persistence.reads import ReadPool
from shared.persistence.relay import EventNotifier, OutboxRelay, Subscriber
from shared.settings import Settings


class RootContainer(containers.DeclarativeContainer):
    """Composition root. The engine is created by the app's lifespan and disposed at shutdown."""

    settings = providers.Singleton(Settings)
    engine = providers.Singleton(create_engine, settings)
    # Wakes this process's relay and long polls when a write with events commits (the write
    # sends no NOTIFY: docs/events.md "Waking up").
    notifier = providers.Singleton(
        EventNotifier, poll_seconds=providers.Callable(lambda s: s.events_poll_seconds, settings)
    )
    # Reads have a pool of their own (asyncpg, no session): opened and closed by the lifespan.
    # With a replica, it reads from the replica, and from a small pool on the primary what
    # the replica cannot serve (shared.persistence.replica).
    read_pool = providers.Singleton(
        ReadPool, settings=settings, server_settings=providers.Callable(server_settings, settings)
    )
    # What watches the round trips units of work send on asyncpg directly (BEGIN, COMMIT, a
    # book's INSERT): metrics and spans are set on it at start-up (bootstrap.observability).
    write_observers = providers.Singleton(StatementObservers)
    session_factory = providers.Singleton(
        create_session_factory,
        engine,
        observers=write_observers,
        events_committed=providers.Callable(lambda notifier: notifier.notify, notifier),
        record_events=providers.Callable(lambda s: s.events_outbox_enabled, settings),
        # With a replica, each commit's WAL position, for the response's Commit-LSN.
        commit_position=providers.Callable(
            lambda s, pool: None if s.replica_database_url is None else pool.commit_position,
            settings,
            read_pool,
        ),
    )

    # The outbox relay's engine (docs/events.md): a few connections of its own, so deliveries
    # never wait for the requests' pool (nor show in its statistics). Always to PostgreSQL
    # itself, never through a transaction-mode pooler: its LISTEN and its advisory locks belong
    # to a session.
    relay_engine = providers.Singleton(
        create_engine,
        providers.Callable(
            lambda s: s.direct().model_copy(
                update={
                    "db_pool_size": s.events_relay_pool_size,
                    "db_max_overflow": 0,
                    # Told apart from the requests' sessions in pg_stat_activity.
                    "db_application_name": f"{s.db_application_name[:57]}-relay",
                }
            ),
            settings,
        ),
    )
    relay_session_factory = providers.Singleton(create_session_factory, relay_engine)

    authors = providers.Container(
        AuthorsContainer, session_factory=session_factory, read_pool=read_pool
    )
    books = providers.Container(
        BooksContainer,
        session_factory=session_factory,
        read_pool=read_pool,
        relay_session_factory=relay_session_factory,
        author_directory=providers.Factory(AuthorDirectoryAdapter, authors=authors.facade),
    )
    # The contexts need each other's facades; a declarative container cannot refer forward,
    # so the authors' port is plugged in once the books container exists.
    authors.book_catalog.override(providers.Factory(BookCatalogAdapter, books=books.facade))

    # The change feed reads the outbox both contexts write; it knows neither.
    changes = providers.Container(ChangesContainer, read_pool=read_pool, signal=notifier)
    relay = providers.Singleton(
        OutboxRelay,
        engine=relay_engine,
        subscribers=providers.Callable(
            lambda keeper, nats_publisher: [
                Subscriber(
                    CreditedNamesKeeper.SUBSCRIBER,
                    keeper.on_events,
                    types=CreditedNamesKeeper.TYPES,
                    data_of=CreditedNamesKeeper.DATA_OF,
                ),
                *(
                    []
                    if nats_publisher is None
                    else [Subscriber(NATS, nats_publisher.publish, nats_publisher.close)]
                ),
            ],
            books.credited_names,
            providers.Callable(
                lambda s: None if s.events_nats_url is None else NatsPublisher(s.events_nats_url),
                settings,
            ),
        ),
        notifier=notifier,
        poll_seconds=providers.Callable(lambda s: s.events_poll_seconds, settings),
        retention_days=providers.Callable(lambda s: s.events_retention_days, settings),
    )

    health = providers.Singleton(HealthCheck, engine=engine, settings=settings, read_pool=read_pool)

    # Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT is set (None: off); tests override it with
    # an in-memory exporter's provider.
    tracer_provider = providers.Singleton(tracer_provider_from_env, package_version())
    observability = providers.Singleton(
        Observability.from_settings, settings=settings, tracer_provider=tracer_provider
    )
