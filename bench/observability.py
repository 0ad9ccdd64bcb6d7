"""`make bench-observability`: what metrics and tracing cost, app against app.

The same build is served several times side by side, each with one observability set-up
(``--variants``): ``off`` (metrics and tracing off: the reference), ``metrics``, ``tracing``,
``on`` (both; every request traced) and ``on-sampled`` (both, 1% of new traces sampled through
the standard ``OTEL_TRACES_SAMPLER``). Tracing exports over OTLP/HTTP to a local sink in this
process that accepts every batch (so spans are really encoded and sent). wrk drives each server
in interleaved rounds (the variants' order rotates every round); the figure is the median over
the rounds of each variant's req/s over ``off``'s in the same round. Uses bench/run.py's
servers, driver and workload, and bench/dataset.py's database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg

from bench import dataset, workload
from bench.run import RESULTS, ROOT, Config
from bench.sidebyside import Side, compare, table

TARGET = 0.95
SAMPLED_RATIO = "0.01"
# The sink is quiet once nothing came for longer than OTEL_BSP_SCHEDULE_DELAY (5 s by default).
QUIET_AFTER_S = 6.0


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    metrics: bool
    tracing: bool
    sampler_ratio: str | None = None


VARIANTS = {
    v.name: v
    for v in (
        Variant("off", metrics=False, tracing=False),
        Variant("metrics", metrics=True, tracing=False),
        Variant("tracing", metrics=False, tracing=True),
        Variant("on", metrics=True, tracing=True),
        Variant("on-sampled", metrics=True, tracing=True, sampler_ratio=SAMPLED_RATIO),
        Variant("tracing-sampled", metrics=False, tracing=True, sampler_ratio=SAMPLED_RATIO),
        # Both on, no request sampled: what tracing costs the requests it does not record.
        Variant("on-never", metrics=True, tracing=True, sampler_ratio="0"),
    )
}


class OtlpSink:
    """A local OTLP/HTTP endpoint that accepts every export (an empty, successful response)."""

    def __init__(self) -> None:
        sink = self
        self.requests = 0
        self.bytes = 0
        self.spans = 0
        self.last_export = 0.0  # time.monotonic() of the last export received

        class Handler(BaseHTTPRequestHandler):
            # Connections kept open between exports, as a collector keeps them (HTTP/1.0, the
            # default here, closed each one: a new TCP connection per export).
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                sink.requests += 1
                sink.bytes += length
                sink.spans += _span_count(body)
                sink.last_export = time.monotonic()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def quiet(self) -> bool:
        """No export for longer than the batch span processor's schedule delay
        (``OTEL_BSP_SCHEDULE_DELAY``, 5 s): every server has sent what it had queued."""
        return time.monotonic() - self.last_export > QUIET_AFTER_S

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _span_count(body: bytes) -> int:
    """The spans in an OTLP/HTTP protobuf export request (0 if it is not one)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception:
        return 0
    return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)


def _args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    p.add_argument("--books", type=int, default=int(env("BENCH_BOOKS", "100000")))
    p.add_argument("--seed", type=int, default=int(env("BENCH_SEED", "1")))
    p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "5")))
    p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "8")))
    p.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")))
    p.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")))
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "1")))
    p.add_argument("--server", default=env("BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432"))
    p.add_argument(
        "--database-name",
        default=env("BENCH_DATABASE_NAME"),
        help="the seeded database to use or create (default: make bench's for --books)",
    )
    p.add_argument("--database-url", default=env("BENCH_DATABASE_URL"))
    p.add_argument("--port", type=int, default=int(env("BENCH_OBS_PORT", "8050")))
    p.add_argument(
        "--variants",
        default=env("BENCH_OBS_VARIANTS", "off,on,metrics,tracing,on-sampled"),
        help=f"comma-separated, 'off' first; from {', '.join(VARIANTS)}",
    )
    p.add_argument("--scenarios", default=env("BENCH_OBS_SCENARIOS", "get_book"))
    a = p.parse_args(argv)
    cfg = Config(
        a.books, a.seed, a.rounds, a.duration, a.warmup, a.connections, a.threads, a.server,
        a.database_url, a.port, a.port, False,
    )  # fmt: skip
    return cfg, a


async def _prepare(
    cfg: Config, name: str | None, wanted: list[str]
) -> tuple[str, int, list[workload.Scenario]]:
    dsn = cfg.database_url or await dataset.ensure(cfg.server, cfg.books, cfg.seed, name=name)
    dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        total = int(await conn.fetchval("SELECT count(*) FROM books"))
        scenarios = [s for s in await workload.build(conn, total) if s.name in wanted]
    finally:
        await conn.close()
    return dsn, total, scenarios


def variant_environment(variant: Variant, sink_port: int) -> dict[str, str]:
    """The variables that give a server (or bench.instructions' app) ``variant``'s set-up."""
    env = {"LIBRARY_METRICS_ENABLED": "true" if variant.metrics else "false"}
    if variant.tracing:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
        env["OTEL_SERVICE_NAME"] = f"library-bench-{variant.name}"
    if variant.sampler_ratio is not None:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = variant.sampler_ratio
    return env


def without_observability(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without what configures the app, tracing or multiprocess metrics."""
    return {
        k: v for k, v in environ.items() if not k.startswith(("LIBRARY_", "OTEL_", "PROMETHEUS"))
    }


def _environment(
    variant: Variant, dsn: str, sink: OtlpSink, auth: dict[str, str]
) -> dict[str, str]:
    return {
        **without_observability(dict(os.environ)),
        "DATABASE_URL": dsn,
        "LIBRARY_HOST": "127.0.0.1",
        "LIBRARY_ENVIRONMENT": "production",
        "LIBRARY_WORKERS": "1",  # one process (production's default is one per CPU)
        "LIBRARY_LOG_FORMAT": "json",
        # Reads only: no event to deliver, and five relays' connections on top of five read
        # pools would pass PostgreSQL's 100.
        "LIBRARY_EVENTS_RELAY_ENABLED": "false",
        # wrk is one client: limits it never reaches (their cost counted, never a 429).
        "LIBRARY_RATE_LIMIT_ANONYMOUS": "10000000/second",
        "LIBRARY_RATE_LIMIT_AUTHENTICATED": "10000000/second",
        **auth,  # production needs a key set to verify tokens with (reads send none)
        **variant_environment(variant, sink.port),
    }


def main(argv: list[str] | None = None) -> None:
    cfg, args = _args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not names or names[0] != "off" or any(n not in VARIANTS for n in names):
        raise SystemExit(f"--variants: 'off' first, then any of {', '.join(VARIANTS)}")
    variants = [VARIANTS[n] for n in names]
    started = datetime.now(UTC)
    run_dir = RESULTS / f"observability-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    dsn, total, scenarios = asyncio.run(
        _prepare(cfg, args.database_name, args.scenarios.split(","))
    )
    sink = OtlpSink()
    from tools import devauth

    key = devauth.new_key_pair(run_dir / "auth")
    auth = {
        "LIBRARY_AUTH_JWKS_FILE": str(key.jwks_file),
        "LIBRARY_AUTH_ISSUER": devauth.DEV_ISSUER,
        "LIBRARY_AUTH_AUDIENCE": devauth.DEV_AUDIENCE,
    }
    sides = [
        Side(
            v.name,
            _environment(v, dsn, sink, auth),
            {
                "metrics": v.metrics,
                "tracing": v.tracing,
                "sampler_ratio": v.sampler_ratio or ("1" if v.tracing else None),
            },
        )
        for v in variants
    ]
    try:
        results = compare(cfg, run_dir, dsn, scenarios, sides, target=TARGET, quiet=sink.quiet)
    finally:
        sink.close()
    results["started"] = started.isoformat(timespec="seconds")
    results["config"]["books"] = total
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["otlp_sink"] = {"export_requests": sink.requests, "bytes": sink.bytes}
    text = table(
        results,
        f"{total:,} books; spans exported to a local OTLP sink ({sink.requests:,} exports)",
    )
    results["table"] = text
    payload = json.dumps(results, indent=2) + "\n"
    (run_dir / "observability.json").write_text(payload)
    (RESULTS / "observability.json").write_text(payload)
    print("\n" + text)
    print(
        f"\nJSON and logs: {run_dir.relative_to(ROOT)}/; summary: bench/results/observability.json"
    )


if __name__ == "__main__":
    main()
