"""A real PgBouncer in transaction mode in front of a PostgreSQL, for the pooler tests and the
development cluster (``tools.cluster``, ``make run-cluster``).

Debian's ``pgbouncer`` (1.18: no ``max_prepared_statements``), started on a free loopback port
(or the one given) and stopped after use. Never skipped: without the binary the tests fail and
say how to install it (``.ci/run`` does).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess  # nosec B404 - runs the pgbouncer binary, fixed arguments
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from sqlalchemy.engine import make_url

from shared.persistence.db import POOLER_STARTUP_PARAMETERS, session_settings
from shared.settings import Settings

# Few server connections, so that many clients share each one: what makes prepared statements
# collide when they are not handled.
SERVER_POOL_SIZE = 4


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def connect_query(settings: Settings) -> str:
    """The session settings the app cannot send through the pooler, as PgBouncer's
    connect_query sets them on each server connection (docs/operations.md)."""
    return "; ".join(
        f"SET {name} = {value}"
        for name, value in session_settings(settings).items()
        if name not in POOLER_STARTUP_PARAMETERS
    )


def pgbouncer_binary() -> str:
    """The pgbouncer executable (PATH, then Debian's /usr/sbin), or an AssertionError saying
    how to get it."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if found is None:
        raise AssertionError(
            "pgbouncer is not installed: the pooler tests need it "
            "(apt-get install pgbouncer; .ci/run installs it)"
        )
    return found


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """PgBouncer (``pool_mode = transaction``) serving the database of ``database_url``, whose
    user and password it logs in with; clients connect to :meth:`url` without a password.

    ``connect_query`` runs on each server connection it opens: the session settings a client
    behind a transaction-mode pooler cannot send (docs/operations.md "Through PgBouncer")."""

    def __init__(
        self,
        database_url: str,
        folder: Path,
        connect_query: str = "",
        port: int | None = None,
        query_wait_timeout: int = 30,
    ) -> None:
        self.target = make_url(database_url)
        self.query_wait_timeout = query_wait_timeout
        self.folder = folder
        self.port = port or free_port()
        self.connect_query = connect_query
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def url(self) -> str:
        """The asyncpg URL of the database through the pooler."""
        url = self.target.set(host="127.0.0.1", port=self.port, password=None, query={})
        return url.render_as_string(hide_password=False)

    def _config(self) -> Path:
        target = self.target
        host = target.query.get("host") or target.host or "127.0.0.1"
        if not isinstance(host, str):
            raise TypeError("one host only")
        user = target.username or "postgres"
        database = (
            f"host={host} port={target.port or 5432} dbname={target.database} user={user}"
            + (f" connect_query='{self.connect_query}'" if self.connect_query else "")
        )
        users = self.folder / "users.txt"
        users.write_text(f"{_quoted(user)} {_quoted(target.password or '')}\n")
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"{target.database} = {database}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {users}",
                    "pool_mode = transaction",
                    f"default_pool_size = {SERVER_POOL_SIZE}",
                    "max_client_conn = 500",
                    # The app's clients wait for a server connection; never longer than this.
                    f"query_wait_timeout = {self.query_wait_timeout}",
                    # A server that refused a login (stopped, restarting) is tried again soon.
                    "server_login_retry = 1",
                    "",
                ]
            )
        )
        # PgBouncer refuses to run as root: it then runs as the user that may reach the
        # server's socket folder (the embedded server's), or as nobody.
        for path in (self.folder, users, config):
            path.chmod(0o755 if path.is_dir() else 0o644)
        return config

    def _user_flag(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        host = self.target.query.get("host")
        if isinstance(host, str) and Path(host).is_dir():
            return ["-u", pwd.getpwuid(Path(host).stat().st_uid).pw_name]
        return ["-u", "nobody"]

    def start(self) -> None:
        """Start PgBouncer and wait until it accepts connections."""
        binary = pgbouncer_binary()
        config = self._config()
        self._log = (self.folder / "pgbouncer.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603 - the pgbouncer binary, our config
            [binary, *self._user_flag(), str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"pgbouncer exited at start:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"pgbouncer did not start:\n{self.output()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: PgBouncer closes every connection at once and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        log = self.folder / "pgbouncer.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
