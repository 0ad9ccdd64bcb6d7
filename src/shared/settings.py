"""Settings, read from the environment (prefix ``LIBRARY_``) and an optional ``.env`` file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# The pool sizes the connection budget counts; when none is set, serve derives them from it.
POOL_SIZE_SETTINGS = (
    "db_pool_size",
    "db_max_overflow",
    "db_read_pool_size",
    "events_relay_pool_size",
)


class Settings(BaseSettings):
    """Everything an operator may tune (documented in docs/operations.md and .env.example)."""

    model_config = SettingsConfigDict(
        env_prefix="LIBRARY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A refused value is not quoted in the error: it may be a URL holding a password.
        hide_input_in_errors=True,
    )

    environment: Literal["development", "test", "production"] = "production"
    # DATABASE_URL is accepted without the prefix too: it is what every platform sets.
    # A secret (it may hold a password): never shown in reprs, logs or validation errors.
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LIBRARY_DATABASE_URL", "DATABASE_URL"),
    )
    # Least privilege: the server connects with database_url, as a role that may only read and
    # write rows; migrations run with this one, as the schema's owner (database_url when unset).
    migration_database_url: SecretStr | None = None
    # The server's role: `library migrate` grants it reading and writing rows (nothing else).
    db_app_role: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # The write pool (SQLAlchemy) and the read pool (asyncpg) are sized for the load, and fixed:
    # connections opened for a burst and closed after it cost more than they save.
    db_pool_size: int = Field(default=16, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    db_read_pool_size: int = Field(default=16, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_lock_timeout_ms: int = Field(default=5_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)
    db_pool_recycle_seconds: int = Field(default=1800, ge=-1)
    db_echo: bool = False
    # Ping each write connection as it leaves the pool (one more round trip per unit of work).
    # Not needed for the Faults guarantee (a connection the server closed is replaced without
    # a round trip, and a read that meets a dead one is retried): only for networks that drop
    # connections without closing them.
    db_pool_pre_ping: bool = False
    # Domain events (docs/events.md): the outbox relay delivers them to in-process subscribers
    # (the books' copy of author names) on an engine of its own of this many connections, and
    # polls every events_poll_seconds when no NOTIFY wakes it (long polls of the feed too).
    events_relay_enabled: bool = True
    # Development only (refused elsewhere): false records no domain events at all and turns the
    # relay off, to measure what the outbox costs (make bench-outbox). Breaks the guarantees of
    # docs/events.md: no change feed, no renames reaching the books' copy of author names.
    events_outbox_enabled: bool = True
    events_relay_pool_size: int = Field(default=3, ge=3, le=20)  # LISTEN, position, handler
    events_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # When set, every event is also published to this NATS server (subjects library.events.*).
    events_nats_url: str | None = None
    # Events older than this are pruned (in batches of 1,000, once a minute, by the relay).
    events_retention_days: int = Field(default=30, ge=1, le=36_500)
    # How close a word of an author's name must be to the query to count as a typo of it
    # (pg_trgm word_similarity, 0-1): 0.5 lets "tolkein" find "Tolkien".
    search_typo_threshold: float = Field(default=0.5, ge=0.1, le=1.0)
    # How the app's sessions show in pg_stat_activity (lets operators and tests single them out).
    db_application_name: str = Field(default="library", min_length=1, max_length=63)
    # What DATABASE_URL points at: PostgreSQL itself ("none"), or a pooler in transaction mode
    # ("transaction": PgBouncer's pool_mode=transaction), where a server connection is lent for
    # one transaction only: no statement cache, no session settings sent (docs/operations.md
    # "Through PgBouncer").
    db_pooler: Literal["none", "transaction"] = "none"
    # PostgreSQL itself, not the pooler: the outbox relay's LISTEN and session advisory locks,
    # and the migrations, need a session of their own. Required with db_pooler=transaction.
    direct_database_url: SecretStr | None = None
    # Connections every worker of `library serve` may open together, all pools counted (write
    # pool + overflow, read pool, the relay's). Beyond it, `library serve` shrinks the default
    # pools to fit, or refuses to start when a pool size was set (within_connection_budget).
    # PostgreSQL's max_connections (100 by default) less room for migrations, psql, monitoring.
    db_connection_budget: int = Field(default=90, ge=1, le=100_000)
    # A streaming replica of the database (docs/operations.md "Read replica"): when set, reads
    # go to it, writes to DATABASE_URL. Beyond replica_max_lag_ms of lag, or while it is down,
    # reads go to the primary (a small read pool of their own there). A read that echoes a
    # write's Commit-LSN waits up to replica_wait_ms for the replica to replay it, then goes to
    # the primary instead.
    replica_database_url: SecretStr | None = None
    replica_max_lag_ms: int = Field(default=1000, ge=0, le=3_600_000)
    replica_wait_ms: int = Field(default=200, ge=0, le=60_000)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Unset: one per CPU in production, 1 elsewhere (development, test).
    workers: int = Field(default=0, ge=0, le=64)
    # The largest request body accepted (413 beyond): ample for the largest valid body, an
    # author's 10,000-character bio written entirely as JSON escapes.
    max_request_body_bytes: int = Field(default=256 * 1024, ge=1024)

    # Prometheus metrics (docs/operations.md "Metrics and tracing"): on by default, at /metrics
    # of the API unless a port of their own is given (then only there, off the public API).
    # Tracing is configured by the standard OTEL_* variables, not here.
    metrics_enabled: bool = True
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str | None = None  # default: LIBRARY_HOST
    # The commit being served (library_build_info); set by the image build, else asked of git.
    build_commit: str | None = Field(default=None, max_length=64)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    alembic_config: str = "alembic.ini"

    # Bearer tokens (docs/guarantees.md "Who may change the catalog"). The verification keys: a
    # JWKS file or URL (RS256, ES256 or EdDSA keys, each with a kid); HS256 (a shared secret as an
    # "oct" key) only in development. Outside development the server refuses to start without
    # keys, an issuer and an audience.
    auth_jwks_file: Path | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # public: anyone may read; required: reads need catalog:read too.
    auth_reads: Literal["public", "required"] = "public"
    # Development only (refused elsewhere): no token needed at all (to measure what auth costs).
    auth_disabled: bool = False

    # HTTP hardening (docs/guarantees.md "HTTP hardening"). Comma-separated lists.
    # CORS is off unless origins are listed (e.g. "https://app.example,https://admin.example").
    cors_origins: str = ""
    # Host headers accepted ("*": any); others get 400.
    trusted_hosts: str = "*"
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips): the client address of rate limits and audit lines comes from them.
    trusted_proxies: str = "127.0.0.1"
    # Serve /docs, /redoc and /openapi.json (switch off in production if the API is private).
    docs_enabled: bool = True

    # Rate limits per client (docs/guarantees.md "Limits per client"), in the notation of the
    # `limits` library ("100/second", "1000/minute;50/second"): per token sub, or per client
    # address.
    rate_limit_enabled: bool = True
    rate_limit_anonymous: str = "50/second;1000/minute"
    rate_limit_authenticated: str = "200/second;6000/minute"
    # Counters in this process by default; in Redis (shared by every process) when set.
    redis_url: str | None = None
    # Prefix of the counters' keys (processes sharing it share the limits).
    rate_limit_namespace: str = "library"
    # At most this many searches (requests with q) run at once per process; others wait up to
    # search_queue_seconds, then get 503. Keeps a burst of searches from taking every connection.
    search_concurrency: int = Field(default=8, ge=1, le=200)
    search_queue_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _outbox_off_in_development_only(self) -> Settings:
        """Without the outbox there is nothing to relay; and it is for measuring only."""
        if not self.events_outbox_enabled:
            if self.environment != "development":
                raise ValueError(
                    "LIBRARY_EVENTS_OUTBOX_ENABLED=false is honoured only with "
                    "LIBRARY_ENVIRONMENT=development (it drops every domain event)"
                )
            self.events_relay_enabled = False
        return self

    @model_validator(mode="after")
    def _default_workers(self) -> Settings:
        """Unset (0) workers: one per CPU this process may run on in production, else 1."""
        if self.workers == 0:
            self.workers = available_cpus() if self.environment == "production" else 1
        return self

    def connections_per_worker(self) -> dict[str, int]:
        """The most connections each pool of one worker opens, by pool."""
        pools = {
            "write": self.db_pool_size + self.db_max_overflow,
            "read": self.db_read_pool_size,
        }
        if self.replica_database_url is not None:
            # The reads the replica cannot serve (down, lagging, behind a client's write).
            pools["primary-read"] = self.primary_read_pool_size()
        if self.events_relay_enabled:
            pools["relay"] = self.events_relay_pool_size
        return pools

    def within_connection_budget(self) -> Settings:
        """These settings, with every worker's pools together within ``db_connection_budget``.

        As configured when they fit. When they do not and no pool size was set (the defaults,
        sized for one process), the request pools are shrunk to share what the budget leaves
        each worker once its relay is counted: half for writes, half for reads. Otherwise a
        RuntimeError says what to change."""
        pools = self.connections_per_worker()
        per_worker = sum(pools.values())
        total = per_worker * self.workers
        if total <= self.db_connection_budget:
            return self
        for_requests = self.db_connection_budget // self.workers - pools.get("relay", 0)
        if not self.model_fields_set & set(POOL_SIZE_SETTINGS) and for_requests >= 2:
            write = for_requests // 2
            if self.replica_database_url is not None and for_requests >= 4:
                # Reads share their half with the primary's read pool (half the read pool's).
                write = for_requests * 2 // 5
                read = (for_requests - write) * 2 // 3
                while read + max(1, read // 2) > for_requests - write:
                    read -= 1
                return self.model_copy(
                    update={"db_pool_size": write, "db_max_overflow": 0, "db_read_pool_size": read}
                )
            return self.model_copy(
                update={
                    "db_pool_size": write,
                    "db_max_overflow": 0,
                    "db_read_pool_size": for_requests - write,
                }
            )
        sizes = " + ".join(f"{name} {size}" for name, size in pools.items())
        raise RuntimeError(
            f"{self.workers} workers x ({sizes} = {per_worker} connections) = {total} "
            f"connections, over LIBRARY_DB_CONNECTION_BUDGET={self.db_connection_budget}: "
            "lower LIBRARY_WORKERS or the pool sizes (LIBRARY_DB_POOL_SIZE, "
            "LIBRARY_DB_MAX_OVERFLOW, LIBRARY_DB_READ_POOL_SIZE, LIBRARY_EVENTS_RELAY_POOL_SIZE; "
            "with a replica the primary's read pool is half the read pool), "
            "or raise the budget if the database allows more (its max_connections)"
        )

    def primary_read_pool_size(self) -> int:
        """With a replica: the most connections of the primary's read pool (opened as needed)."""
        return max(1, self.db_read_pool_size // 2)

    def replica(self) -> Settings | None:
        """These settings on the replica (None without one): what the read pool connects to."""
        if self.replica_database_url is None:
            return None
        return self.model_copy(
            update={"database_url": self.replica_database_url, "db_pooler": "none"}
        )

    @staticmethod
    def listed(value: str) -> list[str]:
        """The items of a comma-separated setting."""
        return [item.strip() for item in value.split(",") if item.strip()]

    def auth_configured(self) -> bool:
        """Whether keys, an issuer and an audience are all set."""
        has_keys = self.auth_jwks_file is not None or self.auth_jwks_url is not None
        return has_keys and bool(self.auth_issuer) and bool(self.auth_audience)

    def check_auth(self) -> None:
        """RuntimeError unless the auth settings are complete (or, in development, off)."""
        if self.auth_disabled:
            if self.environment != "development":
                raise RuntimeError(
                    "LIBRARY_AUTH_DISABLED is honoured only with LIBRARY_ENVIRONMENT=development"
                )
            return
        if self.auth_jwks_file is not None and self.auth_jwks_url is not None:
            raise RuntimeError("set LIBRARY_AUTH_JWKS_FILE or LIBRARY_AUTH_JWKS_URL, not both")
        if not self.auth_configured():
            raise RuntimeError(
                "No token verification configured: set LIBRARY_AUTH_JWKS_FILE (or "
                "LIBRARY_AUTH_JWKS_URL), LIBRARY_AUTH_ISSUER and LIBRARY_AUTH_AUDIENCE "
                "(`make run` does it for development)"
            )

    @field_validator(
        "database_url",
        "migration_database_url",
        "direct_database_url",
        "replica_database_url",
        mode="after",
    )
    @classmethod
    def _asyncpg_url(cls, secret: SecretStr | None) -> SecretStr | None:
        """Accept postgres:// and postgresql:// URLs and use the asyncpg driver for them."""
        value = secret.get_secret_value() if secret is not None else None
        if not value:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            # Not the parser's message: it quotes the URL, password included.
            raise ValueError("not a database URL") from None
        if url.drivername in {"postgres", "postgresql"}:
            url = url.set(drivername="postgresql+asyncpg")
        if url.drivername != "postgresql+asyncpg":
            raise ValueError(
                "the database URL must start with postgresql:// or postgresql+asyncpg://"
            )
        return SecretStr(url.render_as_string(hide_password=False))

    def asyncpg_dsn(self) -> str:
        """The database URL as asyncpg itself takes it (``postgresql://``)."""
        url = make_url(self.require_database_url()).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def require_database_url(self) -> str:
        """The asyncpg URL, or a clear error saying how to set one."""
        if self.database_url is None:
            raise RuntimeError(
                "No database configured: set DATABASE_URL (or LIBRARY_DATABASE_URL), "
                "e.g. postgresql+asyncpg://user:password@localhost:5432/library"
            )
        return self.database_url.get_secret_value()

    def require_migration_url(self) -> str:
        """The URL migrations run with: the schema owner's, or the server's when not set apart
        (PostgreSQL's own, not a pooler's)."""
        if self.migration_database_url is not None:
            return self.migration_database_url.get_secret_value()
        return self.require_direct_url()

    def direct(self) -> Settings:
        """These settings on PostgreSQL itself, past any pooler: for what needs a session of
        its own (the relay's LISTEN and locks, an export's cursor, a seed's COPY)."""
        if self.direct_database_url is None and self.db_pooler == "none":
            return self
        return self.model_copy(
            update={"database_url": SecretStr(self.require_direct_url()), "db_pooler": "none"}
        )

    def require_direct_url(self) -> str:
        """The URL of PostgreSQL itself, for sessions a transaction-mode pooler would break (the
        relay's LISTEN and session locks): DATABASE_URL unless a pooler sits there."""
        if self.direct_database_url is not None:
            return self.direct_database_url.get_secret_value()
        if self.db_pooler != "none":
            raise RuntimeError(
                "LIBRARY_DB_POOLER=transaction needs LIBRARY_DIRECT_DATABASE_URL: PostgreSQL's "
                "own URL, for the outbox relay's LISTEN and locks and for migrations"
            )
        return self.require_database_url()


def available_cpus() -> int:
    """The CPUs this process may use: those it may run on (its affinity, e.g. a container's
    cpuset), fewer when a cgroup quota allows less (a container's --cpus)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, -(-int(quota) // int(period))))
