"""What one sampled request's spans and one export cost, in instructions, without the app.

`python -m bench.span_costs` builds the tracer provider as the app does
(``tracer_provider_from_env``: batch processor, OTLP/HTTP exporter to a local sink in another
process) and, under valgrind, runs a sampled GET's spans (the server span begun and ended as
the request-context middleware does, the read pool's statement span under it) with nothing
else around them: no event loop, no database, so the counts are exact. Each mode is run with
0 and with N repetitions and the difference divided by N:

- ``spans``: the two spans made, attributed and ended (queued, never exported);
- ``request``: the same, the spans of all N exported at the end in one batch (so: plus their
  encoding, plus 1/N of one HTTP POST);
- ``export``: the same, each request's two spans exported at once (plus one POST each).

``make bench-instructions`` measures the whole app; this splits a sampled request's share of it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess  # nosec B404 - fixed programs, our own arguments
import sys
import tempfile
from pathlib import Path
from typing import Any

MODES = ("spans", "request", "export")


def _child(mode: str, repeat: int) -> None:
    os.environ.update(
        {
            "OTEL_SERVICE_NAME": "library-bench",
            "OTEL_BSP_SCHEDULE_DELAY": "100000000",  # exports only when told to
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100000",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100000",
        }
    )
    import random

    from opentelemetry.sdk.trace import Tracer as SdkTracer

    from shared.observability.spans import StatementSpans
    from shared.observability.tracing import Tracing, tracer_provider_from_env

    random.seed(1)
    provider = tracer_provider_from_env("1.0")
    assert provider is not None  # noqa: S101 - an endpoint is set above
    server_spans = Tracing(provider).server_spans()
    tracer = provider.get_tracer("library.db")
    assert isinstance(tracer, SdkTracer)  # noqa: S101 - the SDK's provider
    statements = StatementSpans(tracer)
    connection: Any = type(
        "Connection",
        (),
        {
            "_params": type("Params", (), {"database": "bench_library_100000", "user": "x"}),
            "_addr": ("127.0.0.1", 5432),
        },
    )()
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/books/0010ce1b-5755-4101-8a67-cab7fec53b98",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8042")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8042),
        "root_path": "",
        "state": {},
    }
    sql = "SELECT b.id, b.title, b.isbn13, b.language FROM books AS b WHERE b.id = $1"
    queue = provider._active_span_processor._span_processors[0]._batch_processor._queue  # type: ignore[attr-defined]

    def request() -> None:
        begun = server_spans.begin(scope, "GET", False)
        span = statements.start(sql, connection)
        assert span is not None  # noqa: S101 - every request sampled (the default sampler)
        statements.end(span, None)
        server_spans.end(begun, scope, "GET", 200, None)

    for _ in range(20):  # warm: imports, caches, the sink's connection
        request()
        provider.force_flush()
    for _ in range(repeat):
        request()
        if mode == "spans":
            queue.clear()
        elif mode == "export":
            provider.force_flush()
    provider.force_flush()
    provider.shutdown()


def _count(mode: str, repeat: int, out: Path, sink_port: int) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.setdefault("PYTHONHASHSEED", "0")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"  # not counted
    command = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.span_costs",
        "--child",
        mode,
        str(repeat),
    ]
    subprocess.run(command, check=True, capture_output=True, env=env)  # noqa: S603
    match = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _child(a.child[0], int(a.child[1]))
        return
    from bench.observability import OtlpSink

    sink = OtlpSink()  # in this process: its work is not counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = _count("spans", 0, Path(tmp) / "base.out", sink.port)
            for mode in MODES:
                total = _count(mode, a.repeat, Path(tmp) / f"{mode}.out", sink.port)
                each = (total - base) // a.repeat
                print(f"{mode:8s} {each:>10,d} instructions each", flush=True)
    finally:
        sink.close()


if __name__ == "__main__":
    main()
