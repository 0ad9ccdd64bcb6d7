"""The app image, run as docs/operations.md "Deploying" says, against PostgreSQL in Docker.

Needs a Docker engine and the images: ``make test-containers`` builds them (scripts/images.sh)
and runs this. The app image is ``TEST_APP_IMAGE`` (default ``library:local``, what the script
builds), PostgreSQL's is ``TEST_POSTGRES_IMAGE`` (the integration suite's setting). A missing
engine or image fails these tests: they stand for the image, and are not skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth import AUDIENCE, ISSUER, KEY, bearer
from tests.integration.postgres import postgres_image

pytestmark = pytest.mark.containers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
# docs/guarantees.md "Faults": on SIGTERM the server lets requests in flight finish (up to 20 s)
# and exits 0.
GRACEFUL_SECONDS = 20
USER, PASSWORD, DATABASE = "library", "smoke-test-only", "library"


# Outside development the server does not start without token verification: the container
# verifies the tests' tokens, with their public key set mounted read-only.
KEYS_IN_CONTAINER = "/run/library-keys"
AUTH_ENVIRONMENT = {
    "LIBRARY_AUTH_JWKS_FILE": f"{KEYS_IN_CONTAINER}/jwks.json",
    "LIBRARY_AUTH_ISSUER": ISSUER,
    "LIBRARY_AUTH_AUDIENCE": AUDIENCE,
}


def key_set_volume() -> dict[str, dict[str, str]]:
    """The tests' public key set in a folder the image's unprivileged user can read."""
    folder = Path(tempfile.mkdtemp(prefix="library-smoke-keys-"))
    folder.chmod(0o755)
    target = folder / "jwks.json"
    shutil.copyfile(KEY.jwks_file, target)
    target.chmod(0o644)
    return {str(folder): {"bind": KEYS_IN_CONTAINER, "mode": "ro"}}


def app_image() -> str:
    return os.environ.get("TEST_APP_IMAGE", "").strip() or "library:local"


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as error:
        pytest.fail(f"the image tests need a Docker engine (make test-containers): {error}")
    for image in (app_image(), postgres_image()):
        try:
            client.images.get(image)
        except ImageNotFound:
            pytest.fail(f"image {image} is missing: scripts/images.sh builds the local images")
    yield client
    client.close()


@dataclass
class Stack:
    client: Any
    network: str
    database_url: str


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(docker_client: Any) -> Iterator[Stack]:
    """A user-defined network with PostgreSQL on it, reachable by its name ``db-<id>``."""
    suffix = uuid.uuid4().hex[:8]
    network = docker_client.networks.create(f"library-smoke-{suffix}", driver="bridge")
    db_name = f"db-{suffix}"
    db = docker_client.containers.run(
        postgres_image(),
        name=db_name,
        detach=True,
        network=network.name,
        environment={
            "POSTGRES_USER": USER,
            "POSTGRES_PASSWORD": PASSWORD,
            "POSTGRES_DB": DATABASE,
        },
    )
    try:

        def accepting() -> bool:
            # Over TCP: the official image's first-run server listens on the socket only.
            probe = ["pg_isready", "-h", "127.0.0.1", "-U", USER, "-d", DATABASE]
            return bool(db.exec_run(probe).exit_code == 0)

        _wait(accepting, 60, "PostgreSQL to accept connections")
        url = f"postgresql+asyncpg://{USER}:{PASSWORD}@{db_name}:5432/{DATABASE}"
        yield Stack(docker_client, network.name, url)
    finally:
        db.remove(force=True, v=True)
        network.remove()


@pytest.fixture(scope="module")
def migrated(stack: Stack) -> str:
    """As docs/operations.md says: ``docker run --rm -e DATABASE_URL=... IMAGE library migrate``."""
    container = stack.client.containers.run(
        app_image(),
        ["library", "migrate"],
        detach=True,
        network=stack.network,
        environment={"DATABASE_URL": stack.database_url},
    )
    try:
        result = container.wait(timeout=120)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 0, logs
    return str(logs)


@dataclass
class RunningApp:
    container: Any
    base_url: str


@pytest.fixture(scope="module")
def api(stack: Stack, migrated: str) -> Iterator[RunningApp]:
    """The image's default command (``library serve``), published on a loopback port."""
    container = stack.client.containers.run(
        app_image(),
        detach=True,
        network=stack.network,
        environment={"DATABASE_URL": stack.database_url, **AUTH_ENVIRONMENT},
        volumes=key_set_volume(),
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = container.ports["8000/tcp"][0]["HostPort"]
        base_url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                container.reload()
                assert container.status == "running", container.logs().decode(errors="replace")
                return False

        _wait(ready, 90, "/health/ready to answer 200")
        yield RunningApp(container, base_url)
    finally:
        container.remove(force=True)


def test_migrations_run_by_the_documented_command(migrated: str, stack: Stack) -> None:
    # Run again, it is a no-op that still succeeds (operators run it on every deploy).
    again = stack.client.containers.run(
        app_image(),
        ["library", "migrate"],
        remove=True,
        network=stack.network,
        environment={"DATABASE_URL": stack.database_url},
    )
    assert again is not None


def test_ready_after_migrations_and_a_create_then_a_read_work(api: RunningApp) -> None:
    with httpx.Client(base_url=api.base_url, timeout=10, headers=bearer()) as http:
        assert http.get("/health/ready").status_code == 200
        created = http.post(f"{API}/authors", json={"name": "Ursula K. Le Guin"})
        assert created.status_code == 201, created.text
        author = created.json()
        book = http.post(
            f"{API}/books",
            json={
                "title": "The Dispossessed",
                "author_ids": [author["id"]],
                "isbn": "0-06-051275-X",
            },
        )
        assert book.status_code == 201, book.text
        read = http.get(book.headers["location"])
        assert read.status_code == 200
        assert read.json()["title"] == "The Dispossessed"
        assert read.json()["isbn13"] == "9780060512750"
        listed = http.get(f"{API}/books", params={"q": "dispossessed"}).json()["items"]
        assert [item["id"] for item in listed] == [book.json()["id"]]


def test_the_server_process_is_not_root(api: RunningApp) -> None:
    # PID 1 is `library serve` itself (exec-form CMD): its real and effective uid.
    status = api.container.exec_run(["cat", "/proc/1/status"]).output.decode()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids[0] == uids[1] == "10001", status
    cmdline = api.container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert b"serve" in cmdline


def _distributions(container: Any) -> set[str]:
    script = (
        "import importlib.metadata as m, re\n"
        "for d in m.distributions(): print(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower())"
    )
    result = container.exec_run(["python", "-c", script])
    assert result.exit_code == 0, result.output
    return set(result.output.decode().split())


def _group_names(group: str) -> set[str]:
    import re

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    names = set()
    for requirement in pyproject["dependency-groups"][group]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert name is not None
        names.add(re.sub(r"[-_.]+", "-", name.group()).lower())
    return names


def test_the_image_holds_no_dev_or_bench_package(api: RunningApp) -> None:
    installed = _distributions(api.container)
    assert {"library", "fastapi", "uvicorn", "asyncpg", "alembic"} <= installed
    shipped = installed & (_group_names("dev") | _group_names("bench"))
    assert not shipped, f"dev/bench packages in the image: {sorted(shipped)}"


def test_sigterm_is_a_graceful_exit_0_within_the_documented_time(api: RunningApp) -> None:
    # Last in this module: it stops the server the tests above used.
    started = time.monotonic()
    api.container.kill(signal="SIGTERM")
    result = api.container.wait(timeout=GRACEFUL_SECONDS + 10)
    took = time.monotonic() - started
    logs = api.container.logs().decode(errors="replace")
    assert result["StatusCode"] == 0, logs
    assert took < GRACEFUL_SECONDS, f"exited after {took:.1f} s"
