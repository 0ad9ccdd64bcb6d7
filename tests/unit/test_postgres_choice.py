"""Which PostgreSQL the integration suite gets when Docker answers (tests/integration/postgres.py).

Docker itself is faked here: the engine that answers and the image it can or cannot have. The
real engine is exercised by `make test-containers` (and, offline, by `make test` with dockerd
running: the notice below, then the embedded server).
"""

from __future__ import annotations

import pytest

from tests.integration import postgres


@pytest.fixture(autouse=True)
def fresh_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_decided", {})
    monkeypatch.setattr(postgres, "_ryuk_or_not", lambda: None)
    monkeypatch.delenv("TEST_POSTGRES_IMAGE", raising=False)
    monkeypatch.delenv("TEST_REQUIRE_DOCKER", raising=False)


def engine(monkeypatch: pytest.MonkeyPatch, *, answers: bool, problem: str | None) -> list[str]:
    asked: list[str] = []

    def image_problem(image: str) -> str | None:
        asked.append(image)
        return problem

    monkeypatch.setattr(postgres, "_docker_answers", lambda: answers)
    monkeypatch.setattr(postgres, "_image_problem", image_problem)
    return asked


def test_an_image_docker_cannot_have_is_one_line_and_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine(monkeypatch, answers=True, problem="dial tcp: lookup registry-1.docker.io: no such host")
    notices: list[str] = []
    assert postgres.docker_image(notices.append) is None
    assert postgres.docker_image(notices.append) is None  # decided once: one notice
    assert len(notices) == 1
    (line,) = notices
    assert "\n" not in line
    assert "postgres:18-alpine cannot be had" in line
    assert "no such host" in line
    assert "embedded PostgreSQL" in line


def test_the_image_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = engine(monkeypatch, answers=True, problem=None)
    monkeypatch.setenv("TEST_POSTGRES_IMAGE", "local/postgres:15")
    assert postgres.docker_image(lambda _: None) == "local/postgres:15"
    assert asked == ["local/postgres:15"]


def test_the_official_image_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    engine(monkeypatch, answers=True, problem=None)
    assert postgres.docker_image(lambda _: None) == "postgres:18-alpine"


def test_no_engine_is_the_embedded_server_without_a_word(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = engine(monkeypatch, answers=False, problem=None)
    notices: list[str] = []
    assert postgres.docker_image(notices.append) is None
    assert notices == []
    assert asked == []


def test_require_docker_fails_on_an_image_it_cannot_have(monkeypatch: pytest.MonkeyPatch) -> None:
    engine(monkeypatch, answers=True, problem="pull access denied")
    monkeypatch.setenv("TEST_REQUIRE_DOCKER", "1")
    with pytest.raises(postgres.DockerUnavailableError, match="postgres:18-alpine: pull access"):
        postgres.docker_image(lambda _: None)


def test_require_docker_fails_without_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    engine(monkeypatch, answers=False, problem=None)
    monkeypatch.setenv("TEST_REQUIRE_DOCKER", "1")
    with pytest.raises(postgres.DockerUnavailableError, match="no Docker engine answers"):
        postgres.docker_image(lambda _: None)


def test_require_docker_with_a_server_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REQUIRE_DOCKER", "1")
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    server = postgres.provide_server()
    with pytest.raises(postgres.DockerUnavailableError, match="unset one of them"):
        server.__enter__()


def test_a_require_docker_value_that_means_nothing_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_REQUIRE_DOCKER", "maybe")
    with pytest.raises(RuntimeError, match="TEST_REQUIRE_DOCKER must be 1 or 0"):
        postgres.docker_required()
