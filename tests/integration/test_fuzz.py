"""schemathesis against the app's own OpenAPI, in process (ASGI), on the real database.

The engine the schemathesis CLI runs, with its default phases (examples, coverage, fuzzing and
the stateful phase, which chains operations through the links it infers from the schema and
the Location headers), every default check, valid and invalid data, a fixed seed and a bounded
number of examples per operation, so the run is repeatable and fits in CI's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.python import asgi

from library.bootstrap.app import create_app
from library.bootstrap.container import RootContainer
from shared.settings import Settings
from tests.auth import token

pytestmark = pytest.mark.fuzz

CONFIG = {
    # Every operation runs with a token holding every scope (the 401/403 paths have their own
    # tests in test_auth.py).
    "headers": {"Authorization": f"Bearer {token(ttl=3 * 3600)}"},
    "seed": 20261127,
    "workers": 1,
    "generation": {"mode": "all", "max-examples": 25, "deterministic": True, "database": "none"},
    "checks": {
        # Schema-valid input the domain still refuses: 422 for what JSON Schema cannot say (an
        # ISBN's check digit, author ids that do not exist, a cursor this service did not issue,
        # a language tag that is not ISO 639 / BCP 47, null for a required field of a PATCH),
        # 412 for an If-Match naming an old version. Any other refusal still fails the check.
        "positive_data_acceptance": {
            "expected-statuses": ["2XX", "3XX", 404, 409, 412, 422, 429, "5XX"]
        },
        # A PATCH or DELETE without If-Match is 428 Precondition Required (RFC 6585).
        "missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]},
    },
}


@pytest.fixture
def fuzzed_app(settings: Settings, clean_database: None) -> Iterator[FastAPI]:
    """The real app; schemathesis runs its lifespan in its own event loop, and ends it here."""
    container = RootContainer()
    container.settings.override(settings)
    yield create_app(container=container)
    asgi.shutdown_lifespans()


def _describe(event: events.ScenarioFinished) -> list[str]:
    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status in (Status.FAILURE, Status.ERROR):
                case = event.recorder.cases[case_id].value
                failure = check.failure_info.failure if check.failure_info else None
                found.append(
                    f"[{event.phase}] {event.recorder.label}: {check.name}: "
                    f"{getattr(failure, 'title', '')} {getattr(failure, 'message', '')}\n"
                    f"    {case.method} {case.formatted_path} query={case.query} "
                    f"headers={case.headers} body={case.body!r}"[:1500]
                )
    return found


def test_the_whole_api_answers_as_its_openapi_says(fuzzed_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", fuzzed_app, config=SchemathesisConfig.from_dict(CONFIG)
    )
    problems: list[str] = []
    phases: dict[str, Any] = {}
    scenarios = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
        elif isinstance(event, events.ScenarioFinished):
            scenarios += 1
            if event.status in (Status.FAILURE, Status.ERROR):
                problems += _describe(event) or [f"{event.recorder.label}: {event.status}"]
        elif isinstance(event, events.NonFatalError):
            problems.append(f"error: {event.info.title} {event.info.message}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    assert not problems, "\n".join(problems[:40])
    assert scenarios > 0
    assert phases.get("stateful") == Status.SUCCESS, phases
