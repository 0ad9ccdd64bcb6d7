"""The OTLP exporter's set-up (shared.observability.tracing): the resource's hash computed once
instead of per exported span, to the same effect."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

from shared.observability import tracing

URL = "http://collector:4318/v1/traces"


def test_the_resource_hashed_once_is_the_same_resource() -> None:
    created = Resource.create({"service.name": "library", "service.version": "1.0"})
    hashed = tracing._resource_hashed_once(created)
    assert isinstance(hashed, Resource)
    assert hashed == created
    assert hash(hashed) == hash(created)
    assert dict(hashed.attributes) == dict(created.attributes)


def test_the_resource_is_not_hashed_again_per_span(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = tracing._resource_hashed_once(Resource.create({"service.name": "library"}))
    calls: list[Resource] = []
    original = Resource.__hash__

    def counted(self: Resource) -> int:
        calls.append(self)
        return original(self)

    monkeypatch.setattr(Resource, "__hash__", counted)
    spans_grouped = {hashed: 1}
    for _ in range(3):  # the encoder looks each exported span's resource up
        spans_grouped[hashed] += 1
    assert calls == []
