"""The request path counts in plain numbers; /metrics must show exactly what prometheus-client
would have, had each observation gone to it directly."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.observability.metrics import DB_BUCKETS, HTTP_BUCKETS, Metrics

DURATIONS = [0.0004, 0.001, 0.0013, 0.003, 0.003, 0.07, 0.2, 1.0, 3.3, 12.0]


class Route:
    path = "/books/{book_id}"


def samples(exposition: bytes, name: str, **labels: str) -> dict[str, float]:
    """``name``'s samples whose labels include ``labels``, by sample name and ``le``."""
    found = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            if sample.name.startswith(name) and labels.items() <= sample.labels.items():
                found[f"{sample.name}{sample.labels.get('le', '')}"] = sample.value
    return found


def direct(buckets: tuple[float, ...]) -> dict[str, float]:
    """The same durations observed by prometheus-client itself."""
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", buckets=buckets, registry=registry)
    for seconds in DURATIONS:
        histogram.observe(seconds)
    expected = samples(generate_latest(registry), "h_")
    return {key[2:]: value for key, value in expected.items() if not key.startswith("h_created")}


def test_request_durations_render_as_if_observed_directly() -> None:
    metrics = Metrics(version="v", commit="c")
    route = Route()
    scope = {"route": route, "app": None}
    for seconds in DURATIONS:
        metrics.request_started("GET")
        metrics.request_finished(scope, "GET", 200, seconds)
    metrics.request_started("BREW")
    metrics.request_finished(scope, "BREW", 304, 0.002)
    metrics.request_started("GET")  # still in flight at the scrape

    first = metrics.render()
    got = samples(first, "http_server_request_duration_seconds_", http_request_method="GET")
    expected = direct(HTTP_BUCKETS)
    assert {k.removeprefix("http_server_request_duration_seconds_"): v for k, v in got.items()} == (
        pytest.approx(expected)
    )
    other = samples(
        first, "http_server_request_duration_seconds_count", http_request_method="_OTHER"
    )
    assert list(other.values()) == [1]
    assert samples(first, "http_server_active_requests", http_request_method="GET") == {
        "http_server_active_requests": 1
    }
    assert samples(first, "library_http_responses_total", http_response_status_code="304") == {
        "library_http_responses_total": 1
    }
    # Rendering again (another scrape, or the multiprocess writer) adds nothing twice.
    again = metrics.render()
    for name in ("http_server_", "library_http_responses"):
        assert samples(again, name) == samples(first, name)


def test_statement_durations_render_as_if_observed_directly() -> None:
    metrics = Metrics(version="v", commit="c")
    observe = metrics.query_observer("read")
    for seconds in DURATIONS:
        observe("SELECT 1", seconds)
    got = samples(
        metrics.render(), "db_client_operation_duration_seconds_", db_operation_name="SELECT"
    )
    assert {k.removeprefix("db_client_operation_duration_seconds_"): v for k, v in got.items()} == (
        pytest.approx(direct(DB_BUCKETS))
    )
