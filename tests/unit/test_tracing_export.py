"""The OTLP exporter's set-up (shared.observability.tracing): what it does once instead of per
export or per span, to the same effect."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from opentelemetry.sdk.resources import Resource

from shared.observability import tracing

URL = "http://collector:4318/v1/traces"


def _sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def request(_self: Any, _method: str, _url: str, *_args: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return seen


def test_the_export_session_passes_the_environments_proxy_and_ca_bundle_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/collector.pem")
    seen = _sent(monkeypatch)
    session = tracing._session_settled_once()
    assert session.trust_env is False  # requests looks nothing up per call

    session.request(method="POST", url=URL, data=b"spans", allow_redirects=False)
    monkeypatch.setenv("HTTP_PROXY", "http://elsewhere:1")  # read once, at the first export
    session.request(method="POST", url=URL, data=b"spans", allow_redirects=False)

    for kwargs in seen:
        assert kwargs["proxies"]["http"] == "http://proxy:3128"
        assert kwargs["verify"] == "/etc/ssl/collector.pem"
        assert kwargs["data"] == b"spans"


def test_the_export_session_leaves_out_a_proxy_no_proxy_excludes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "collector")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    seen = _sent(monkeypatch)
    tracing._session_settled_once().request(method="POST", url=URL, data=b"spans")
    assert "proxies" not in seen[0]
    assert "verify" not in seen[0]


def test_the_resource_hashed_once_is_the_same_resource() -> None:
    created = Resource.create({"service.name": "library", "service.version": "1.0"})
    hashed = tracing._resource_hashed_once(created)
    assert isinstance(hashed, Resource)
    assert hashed == created
    assert hash(hashed) == hash(created)
    assert dict(hashed.attributes) == dict(created.attributes)
