"""``library serve`` as a real process on a free port, for the signal and crash tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from tests.auth import AUTH_SETTINGS

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One ``library serve`` process (started by ``start``); its output goes to ``log_path``."""

    def __init__(
        self, database_url: str, application_name: str, log_path: Path, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "LIBRARY_DATABASE_URL": database_url,
            "LIBRARY_DB_APPLICATION_NAME": application_name,
            "LIBRARY_PORT": str(self.port),
            "LIBRARY_HOST": "127.0.0.1",
            "LIBRARY_WORKERS": "1",
            "LIBRARY_ENVIRONMENT": "test",
            "LIBRARY_LOG_FORMAT": "json",
            "LIBRARY_AUTH_JWKS_FILE": str(AUTH_SETTINGS["auth_jwks_file"]),
            "LIBRARY_AUTH_ISSUER": AUTH_SETTINGS["auth_issuer"],
            "LIBRARY_AUTH_AUDIENCE": AUTH_SETTINGS["auth_audience"],
            "LIBRARY_RATE_LIMIT_ENABLED": "false",
        }
        self.args: list[str] = []  # after ``library serve`` (e.g. --workers 2)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        """Start the process and wait until it answers /health/live."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220, S603 - returns at once; our serve
            [sys.executable, "-m", "library.cli", "serve", *self.args],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # A group of its own: a test that ends early kills its workers too (they outlive a
            # supervisor killed alone, and their relays would serve the later tests' events).
            start_new_session=True,
        )
        # Generous: on a loaded 2-core machine, importing the app alone has taken 20 s.
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited at start:\n{self.output()}")
                try:
                    if (await http.get("/health/live")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not start:\n{self.output()}")
                await asyncio.sleep(0.05)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, seconds: float = 30) -> int:
        """Its exit status once it has exited."""
        assert self.process is not None
        returncode = await asyncio.to_thread(self.process.wait, seconds)
        if self._log is not None:
            self._log.close()
            self._log = None
        return returncode

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the server and any worker left
        if self.running():
            await self.wait()
