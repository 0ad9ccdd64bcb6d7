"""Where the integration tests get their PostgreSQL from, in order:

1. ``TEST_DATABASE_URL`` when set: a scratch database the tests may empty (the role must also
   be allowed to create databases: the migration tests use ``<name>_migrations`` beside it);
2. a testcontainers ``PostgresContainer`` of ``TEST_POSTGRES_IMAGE`` (default
   ``postgres:18-alpine``) when a Docker engine answers a ping and has the image or can pull it;
3. the embedded PostgreSQL (``tools.devdb``) in ``.pgdata/test``.

``TEST_CLUSTER=1`` replaces them all with the cluster of ``make run-cluster`` (``tools.cluster``:
an embedded primary, a streaming replica, PgBouncer), started in a folder under /tmp: the tests'
databases are the primary's, and the app under test reads from the replica (``conftest.py``).

When Docker answers but the image cannot be had (offline, rate-limited, no registry), one line
says so and the embedded server is used. ``TEST_REQUIRE_DOCKER=1`` (CI's containers leg) makes
that, and a Docker engine that does not answer, a hard failure instead.

The fault test that stops and starts its server gets one of its own, chosen the same way
(``provide_restartable``): a second container, or an embedded server in ``.pgdata/fault``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from shared.settings import Settings

APP_DATABASE = "library_test"
# Under pytest-xdist (``pytest -n 2``: make test-quick) each worker runs the application tests on
# a database of its own, named after the worker.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
TEST_DATA_DIR = Path(__file__).resolve().parents[2] / ".pgdata" / "test"
DEFAULT_POSTGRES_IMAGE = "postgres:18-alpine"
# Pulling an image that is there to pull takes a while; one that is not answers at once.
PULL_TIMEOUT_SECONDS = 300

Notice = Callable[[str], None]


async def connect_url(url: URL, **options: Any) -> asyncpg.Connection:
    """A plain asyncpg connection (outside any pool) to ``url``, a socket or a TCP host."""
    host = url.query.get("host") or url.host
    return await asyncpg.connect(
        host=host if isinstance(host, str) else None,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
        **options,
    )


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server the tests may create databases on."""

    source: str
    admin_url: URL  # asyncpg URL of a database to connect to for CREATE/DROP DATABASE
    app_database: str  # the database the application tests run on
    owns_app_database: bool  # True when we create it (and drop it at the end)
    cluster: Any = None  # the tools.cluster.Cluster the server is the primary of (TEST_CLUSTER)

    def database_url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    async def _admin(self) -> asyncpg.Connection:
        return await connect_url(self.admin_url)

    @property
    def migrations_database(self) -> str:
        """An empty database of their own for the migration tests."""
        return f"{self.app_database}_migrations"

    def version(self) -> str:
        async def run() -> str:
            conn = await self._admin()
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        return asyncio.run(run())

    def recreate_database(self, name: str) -> None:
        """Drop database ``name`` if it exists and create it empty."""

        async def run() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(run())

    def drop_role(self, name: str) -> None:
        """Drop role ``name`` if it exists (after the databases it had grants in)."""

        async def run() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
            finally:
                await conn.close()

        asyncio.run(run())

    def drop_database(self, name: str) -> None:
        async def run() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())


def postgres_image() -> str:
    """The PostgreSQL image the tests run in Docker: ``TEST_POSTGRES_IMAGE``, else the official."""
    return os.environ.get("TEST_POSTGRES_IMAGE", "").strip() or DEFAULT_POSTGRES_IMAGE


def docker_required() -> bool:
    """``TEST_REQUIRE_DOCKER=1``: no fallback, the suite fails when Docker cannot serve."""
    value = os.environ.get("TEST_REQUIRE_DOCKER", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise RuntimeError(f"TEST_REQUIRE_DOCKER must be 1 or 0, not {value!r}")


class DockerUnavailableError(RuntimeError):
    """TEST_REQUIRE_DOCKER=1, but Docker cannot run the tests' PostgreSQL."""


def _quiet_gc() -> None:
    # docker-py leaves the socket of a failed connection to the garbage collector: collect
    # it now, quietly, rather than in the middle of whichever test runs next.
    hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False  # no engine to ask (and docker-py leaks a socket when it asks in vain)
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False
    finally:
        _quiet_gc()


def _first_line(error: BaseException) -> str:
    # docker-py's APIError carries the engine's own words in ``explanation``.
    text = str(getattr(error, "explanation", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _image_problem(image: str) -> str | None:
    """None when Docker has ``image`` (pulled now if need be); otherwise why it cannot be had."""
    import docker
    from docker.errors import DockerException, ImageNotFound
    from docker.utils import parse_repository_tag

    try:
        client = docker.from_env(timeout=PULL_TIMEOUT_SECONDS)
    except DockerException as error:
        return _first_line(error)
    try:
        try:
            client.images.get(image)
            return None
        except ImageNotFound:
            pass
        repository, tag = parse_repository_tag(image)
        client.images.pull(repository, tag=tag or "latest")
        return None
    except (DockerException, OSError) as error:
        return _first_line(error)
    finally:
        client.close()
        _quiet_gc()


_decided: dict[str, str | None] = {}


def docker_image(notice: Notice) -> str | None:
    """The image to run PostgreSQL from in Docker, or None for the embedded server.

    Decided once per test process: the suite's server and the fault tests' own agree, and the
    notice is printed once.
    """
    if "image" not in _decided:
        _decided["image"] = _decide(notice)
    return _decided["image"]


def _decide(notice: Notice) -> str | None:
    required = docker_required()
    if not _docker_answers():
        if required:
            raise DockerUnavailableError(
                "TEST_REQUIRE_DOCKER=1 but no Docker engine answers "
                "(DOCKER_HOST, or /var/run/docker.sock)"
            )
        return None
    image = postgres_image()
    problem = _image_problem(image)
    if problem is not None:
        if required:
            raise DockerUnavailableError(
                f"TEST_REQUIRE_DOCKER=1 but Docker cannot have the image {image}: {problem}"
            )
        notice(
            f"Docker answers but the PostgreSQL image {image} cannot be had ({problem}): "
            "using the embedded PostgreSQL instead (TEST_POSTGRES_IMAGE names another image)"
        )
        return None
    _ryuk_or_not()
    return image


def _ryuk_or_not() -> None:
    """Ryuk (testcontainers' reaper of containers left by a killed run) runs only if its image
    is there: the containers are stopped by the fixtures anyway, and it is not worth a failure.
    """
    from testcontainers.core.config import testcontainers_config

    if testcontainers_config.ryuk_disabled:
        return
    if _image_problem(testcontainers_config.ryuk_image) is not None:
        testcontainers_config.ryuk_disabled = True


def _ryuk_note() -> str:
    from testcontainers.core.config import testcontainers_config

    return "" if not testcontainers_config.ryuk_disabled else ", Ryuk off"


def _ignore(_: str) -> None:
    pass


def notice_for(config: Any) -> Notice:
    """A one-line message on pytest's terminal (not captured), or nowhere without one."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return _ignore

    def notice(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(line)

    return notice


@contextlib.contextmanager
def provide_server(notice: Notice = _ignore) -> Iterator[Server]:
    """The server for this test session (stopped at the end when we started it)."""
    if os.environ.get("TEST_CLUSTER"):
        yield from _cluster_server()
        return
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        if docker_required():
            raise DockerUnavailableError(
                "TEST_REQUIRE_DOCKER=1 asks for a container, but TEST_DATABASE_URL names a "
                "server: unset one of them"
            )
        url = make_url(Settings(database_url=explicit).require_database_url())
        yield Server(
            source=f"TEST_DATABASE_URL ({url.host or 'socket'}:{url.port or 5432}/{url.database})",
            admin_url=url,
            # A worker's database is created and dropped by the session (the role may create
            # databases: the migration tests need it too).
            app_database=f"{url.database}_{XDIST_WORKER}" if XDIST_WORKER else str(url.database),
            owns_app_database=XDIST_WORKER is not None,
        )
        return
    image = docker_image(notice)
    if image is not None:
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(image, driver="asyncpg") as container:
            url = make_url(container.get_connection_url())
            yield Server(
                source=f"testcontainers ({image}{_ryuk_note()})",
                admin_url=url,
                app_database=APP_DATABASE,
                owns_app_database=True,
            )
        return
    if XDIST_WORKER is not None:
        # One embedded server per checkout: the worker that started it would stop it under the
        # others at its exit.
        raise RuntimeError("pytest -n needs TEST_DATABASE_URL or a Docker engine")
    from tools import devdb

    socket_dir, user = devdb.start(TEST_DATA_DIR)
    url = make_url(devdb.url(socket_dir, user, "postgres"))
    yield Server(
        source=f"embedded PostgreSQL ({TEST_DATA_DIR})",
        admin_url=url,
        app_database=APP_DATABASE,
        owns_app_database=True,
    )


def _cluster_server() -> Iterator[Server]:
    import shutil
    import tempfile

    from tools.cluster import Cluster

    if XDIST_WORKER is not None:
        raise RuntimeError("TEST_CLUSTER runs in one pytest process (no -n)")
    folder = Path(tempfile.mkdtemp(prefix="library-cluster-"))
    try:
        with Cluster(folder) as cluster:
            yield Server(
                source="TEST_CLUSTER (tools.cluster: primary, streaming replica, PgBouncer)",
                admin_url=make_url(cluster.primary_url(cluster.owner)).set(database="postgres"),
                app_database=APP_DATABASE,
                owns_app_database=True,
                cluster=cluster,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_accepting(url: URL, *, seconds: float = 60.0) -> None:
    """Poll until ``url`` takes a connection (a server that was just started)."""

    async def attempt() -> None:
        conn = await connect_url(url, timeout=2)
        await conn.close()

    deadline = time.monotonic() + seconds
    while True:
        try:
            asyncio.run(attempt())
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
