"""docker-compose.yml: it validates, and `up` serves the API on the images it names.

Debian's docker-compose (1.29) runs it. The images are the local ones (``TEST_APP_IMAGE``,
``TEST_POSTGRES_IMAGE``) through the file's LIBRARY_IMAGE and POSTGRES_IMAGE; ``--no-build``.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - runs docker-compose, a fixed command
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
