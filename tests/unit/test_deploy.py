"""What deploy/ ships for operators: alert rules that promtool accepts and whose unit tests pass,
and a dashboard and rules that only ask for metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from shared.observability.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "library-dashboard.json"
_OURS = re.compile(r"\b((?:http_server|db_client|library)_[a-z_]+)\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: apt-get install prometheus (Debian ships it there)")
    return subprocess.run(  # noqa: S603 (promtool from PATH, our own files)
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False, timeout=60
    )


def test_promtool_accepts_the_alert_rules_and_the_config() -> None:
    for args in (("check", "rules", "alerts.yml"), ("check", "config", "prometheus.yml")):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_fire_when_they_should_and_only_then() -> None:
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def exported_names() -> set[str]:
    """The series names the service may export, and their label names."""
    metrics = Metrics(version="v", commit="c")
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            [family] = metric.describe()
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            names |= {family.name} | {family.name + s for s in suffixes.get(family.type, [])}
            names |= set(metric._labelnames)
    return names


def test_the_dashboard_and_the_rules_use_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    rules = (PROMETHEUS / "alerts.yml").read_text()
    used = {name for text in [*exprs, rules] for name in _OURS.findall(text)}
    assert used
    assert used <= exported_names(), used - exported_names()
