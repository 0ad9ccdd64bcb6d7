"""docker-compose.yml: it validates, and `up` serves the API on the images it names.

Debian's docker-compose (1.29) runs it. The images are the local ones (``TEST_APP_IMAGE``,
``TEST_POSTGRES_IMAGE``) through the file's LIBRARY_IMAGE and POSTGRES_IMAGE; ``--no-build``.
The profile ``cluster`` (primary, replica, PgBouncer, two workers: docs/scaling.md) is checked
as ``docker-compose config`` resolves it, without an engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - runs docker-compose, a fixed command
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML, locked in the dev group (bandit's)

from tests.auth import AUDIENCE, ISSUER, bearer
from tests.containers.test_image import app_image, key_set_volume
from tests.integration.postgres import free_port, postgres_image

pytestmark = pytest.mark.containers

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is needed (Debian's docker-compose; make test-containers)")
    return subprocess.run(  # noqa: S603 - docker-compose with our own arguments
        [binary, "--file", str(PROJECT_ROOT / "docker-compose.yml"), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_compose_file_validates() -> None:
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


CLUSTER_SERVICES = {"db-replica", "pgbouncer", "api-cluster"}


def resolved(*args: str) -> dict[str, Any]:
    """The file as docker-compose resolves it (defaults filled in, anchors merged)."""
    result = compose(*args, "config")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_the_cluster_profile_validates_and_leaves_the_default_services_alone() -> None:
    result = compose("--profile", "cluster", "config", "--quiet")
    assert result.returncode == 0, result.stderr
    services = resolved("--profile", "cluster")["services"]
    in_cluster = {
        name for name, service in services.items() if "cluster" in service.get("profiles", [])
    }
    assert in_cluster == CLUSTER_SERVICES
    # Plain `docker compose up` starts what it started before, and nothing of the cluster.
    assert {name for name, service in services.items() if not service.get("profiles")} == {
        "db",
        "migrate",
        "api",
    }
    assert services["api"]["environment"]["DATABASE_URL"].endswith("@db:5432/library")


def test_the_cluster_api_goes_through_pgbouncer_and_reads_on_the_replica() -> None:
    services = resolved("--profile", "cluster")["services"]
    env = services["api-cluster"]["environment"]
    assert env["DATABASE_URL"].endswith("@pgbouncer:6432/library")
    assert env["LIBRARY_DB_POOLER"] == "transaction"
    assert env["LIBRARY_DIRECT_DATABASE_URL"].endswith("@db:5432/library")
    assert env["LIBRARY_REPLICA_DATABASE_URL"].endswith("@db-replica:5432/library")
    assert env["LIBRARY_WORKERS"] == "2"
    assert services["api-cluster"]["command"] == ["library", "serve"]
    assert services["db-replica"]["image"] == services["db"]["image"]
    # The files the cluster's services mount are in the repository.
    for name in ("db", "db-replica", "pgbouncer"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts {source}, which is missing"
    pgbouncer_ini = (PROJECT_ROOT / "deploy/pgbouncer/pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in pgbouncer_ini
    assert "host=db port=5432" in pgbouncer_ini


@pytest.fixture
def compose_up() -> Iterator[str]:
    port = free_port()
    env = {
        "COMPOSE_PROJECT_NAME": f"library-smoke-{uuid.uuid4().hex[:8]}",
        "LIBRARY_IMAGE": app_image(),
        "POSTGRES_IMAGE": postgres_image(),
        "API_PORT": str(port),
        # The tests' public key set, readable by the image's unprivileged user.
        "LIBRARY_AUTH_KEYS_DIR": next(iter(key_set_volume())),
        "LIBRARY_AUTH_ISSUER": ISSUER,
        "LIBRARY_AUTH_AUDIENCE": AUDIENCE,
    }
    try:
        up = compose("up", "--detach", "--no-build", env=env)
        assert up.returncode == 0, up.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        down = compose("down", "--volumes", "--timeout", "30", env=env)
        assert down.returncode == 0, down.stderr


def test_compose_up_migrates_then_serves(compose_up: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{compose_up}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the compose stack's API never became ready"
        time.sleep(0.5)
    created = httpx.post(
        f"{compose_up}/api/v1/authors", json={"name": "Compose"}, headers=bearer(), timeout=10
    )
    assert created.status_code == 201, created.text
    read = httpx.get(f"{compose_up}{created.headers['location']}", timeout=10)
    assert read.json()["name"] == "Compose"
