"""Instructions per request, counted by valgrind: the request path's cost, whatever the load.

`python -m bench.instructions --dsn postgresql://.../bench_library_100000 --only get_book`
runs the app in process as `bench.micro` does (production settings, 16 concurrent callers, no
HTTP server) under ``valgrind --tool=callgrind`` with instrumentation off, warms it up, counts
the instructions of ``--requests`` requests only (``callgrind_control -i on``/``off`` around
them), and prints the count per request, with the callgrind file for ``callgrind_annotate``.
``--observability off|metrics|tracing|tracing-sampled|on|on-sampled`` (repeatable) sets the
app up as `make bench-observability`'s variant of that name: metrics on or off, spans exported
over OTLP/HTTP to a local sink in the parent process (not counted), every request or 1% of them
sampled; the spans of the warm-up are exported before counting starts and those of the counted
requests before it stops. Without it, the environment decides (metrics are on by default).

On a shared machine req/s and CPU time drift with what else runs (two rounds of identical code
differed by 2x here); an instruction count does not: the same code, data and settings give the
same count to within 0.1%, loaded or not, given one hash seed (``PYTHONHASHSEED``, 0 unless
set: string hashes order the dicts and sets, and a random seed per run moved the count). It
measures this process only (the app's Python, asyncpg's client side; not uvicorn, not
PostgreSQL), and instructions are not time (a cache miss costs more than an add): compare two
commits with it, then let `make bench` judge.
Needs valgrind (Debian's package). A run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess  # nosec B404 - fixed programs, our own arguments
import sys
import tempfile
import time
from pathlib import Path

from bench import micro
from bench.observability import VARIANTS, OtlpSink, variant_environment

CHILD_WARM = 320
COUNTED_SEED = 12


async def _child(
    dsn: str, shape: str, requests: int, control: Path, baseline: Path | None = None
) -> None:
    """Under valgrind: warm up, say READY, wait for ``go``, run, say DONE, wait for ``stop``."""
    if baseline is not None:
        await _baseline_child(dsn, shape, requests, control, baseline)
        return
    os.environ["LIBRARY_DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+asyncpg://")
    micro.production_like(control / "keys")
    from library.bootstrap.app import create_app

    app = create_app()
    shapes, authors = await micro._targets(dsn)
    writes = authors if shape == "post_book" else None
    provider = app.state.container.tracer_provider()  # None: tracing off
    async with app.router.lifespan_context(app):
        await micro._measure(app, shapes[shape], CHILD_WARM, writes)
        if provider is not None:
            provider.force_flush()  # the warm-up's spans are exported before counting starts
        (control / "ready").touch()
        await _file_appears(control / "go")
        # The trace ids (and so which requests a ratio sampler records) come from ``random``:
        # seeded, the counted requests sampled are the same from run to run of one build.
        random.seed(COUNTED_SEED)
        await micro._measure(app, shapes[shape], requests, writes)
        if provider is not None:
            provider.force_flush()  # and the counted requests' before it stops
        (control / "done").touch()
        await _file_appears(control / "stop")
    if writes:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM books WHERE title LIKE 'micro-post %'")
        finally:
            await conn.close()


async def _baseline_child(dsn: str, shape: str, requests: int, control: Path, replay: Path) -> None:
    """As :func:`_child`, for `make bench`'s baseline (bench.baseline) replaying ``replay``'s
    capture of ``shape``: the same requests, the gap between the two in instructions."""
    import orjson

    from bench.baseline import create_app

    os.environ["BENCH_DSN"] = dsn
    app = create_app(replay, micro.CALLERS, micro.CALLERS)
    captured = orjson.loads(replay.read_bytes())  # noqa: ASYNC240 - before the loop serves
    targets = [r["path"] for r in captured[shape]["requests"]]
    async with app.router.lifespan_context(app):
        await micro._measure(app, targets, CHILD_WARM)
        (control / "ready").touch()
        await _file_appears(control / "go")
        await micro._measure(app, targets, requests)
        (control / "done").touch()
        await _file_appears(control / "stop")


async def _file_appears(path: Path) -> None:
    """Another process (the parent, not this event loop) signals by creating ``path``."""
    while not path.exists():  # noqa: ASYNC110, ASYNC240 - a signal from another process
        await asyncio.sleep(0.05)


def _wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise SystemExit(f"the app under valgrind exited ({process.returncode}) early")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"no {path.name} after {timeout} s")
        time.sleep(0.2)


def count(
    dsn: str,
    shape: str,
    requests: int,
    out_dir: Path,
    env: dict[str, str] | None = None,
    tag: str = "",
    sink: OtlpSink | None = None,
    baseline: Path | None = None,
) -> tuple[int, Path, tuple[int, int]]:
    """(instructions per request, callgrind file, (exports, spans) the ``sink`` received while
    counting) of ``requests`` requests of ``shape``, the app's process getting ``env``
    (default: this one's)."""
    valgrind, control_tool = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control_tool is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    out = out_dir / f"callgrind-{shape}{tag}.out"
    with tempfile.TemporaryDirectory() as tmp:
        control = Path(tmp)
        (control / "keys").mkdir()
        command = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            "--dsn",
            dsn,
            "--only",
            shape,
            "--requests",
            str(requests),
            "--control",
            str(control),
            *(["--baseline", str(baseline)] if baseline is not None else []),
        ]

        def instrument(state: str) -> None:
            """Switch counting on or off in the running valgrind (between the requests)."""
            command = [control_tool, "-i", state, str(process.pid)]
            subprocess.run(command, check=True, capture_output=True)  # noqa: S603

        # One hash seed (PYTHONHASHSEED, 0 unless set): with a random one per run, the same
        # build's count moved by up to 5% with tracing on (507k and 531k per GET).
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONHASHSEED", "0")
        # No outbox relay: its listening, polling and pruning run by the clock, and valgrind
        # stretches the clock ~50x, so its share of the count followed the machine's load
        # (the same build's GET read 472k to 533k with it on a loaded machine).
        child_env.setdefault("LIBRARY_EVENTS_RELAY_ENABLED", "false")
        # Spans exported at the force_flush calls only (after the warm-up, after the counted
        # requests), not by the batch processor's 5 s timer: valgrind stretches the clock, so
        # how many timer exports fell among the counted requests (each some 2M instructions of
        # HTTP, plus the batch's encoding) followed the machine's load, and at ~50x the
        # served rate (served, one export carries some 5 s of requests: thousands).
        child_env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "86400000")
        log = (out_dir / f"callgrind-{shape}{tag}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603
            command, stdout=log, stderr=subprocess.STDOUT, env=child_env
        )
        try:
            _wait_for(control / "ready", process)
            instrument("on")
            before = (sink.requests, sink.spans) if sink is not None else (0, 0)
            (control / "go").touch()
            _wait_for(control / "done", process)
            instrument("off")
            after = (sink.requests, sink.spans) if sink is not None else (0, 0)
            (control / "stop").touch()
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    match = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    done = requests // micro.CALLERS * micro.CALLERS
    return int(match.group(1)) // done, out, (after[0] - before[0], after[1] - before[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", required=True)
    p.add_argument("--only", action="append", choices=sorted(micro.SHAPES))
    p.add_argument("--requests", type=int, default=480)
    p.add_argument("--out", type=Path, default=Path("bench/results/instructions"))
    p.add_argument(
        "--observability",
        action="append",
        choices=list(VARIANTS),
        help="metrics and tracing as bench.observability's variant of that name (repeatable)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="count make bench's baseline instead, replaying this run's replay.json (its DSN)",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--control", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        import uvloop

        uvloop.run(_child(a.dsn, a.only[0], a.requests, a.control, a.baseline))
        return
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.observability:
        tag = "" if a.baseline is None else "-baseline"
        for shape in a.only or ["get_book", "list_50"]:
            per_request, out, _ = count(
                a.dsn, shape, a.requests, a.out, tag=tag, baseline=a.baseline
            )
            print(f"{shape:10s} {per_request:>12,d} instructions/request  ({out})", flush=True)
        return
    sink = OtlpSink()
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "PROMETHEUS", "LIBRARY_METRICS"))
    }
    try:
        for name in a.observability:
            env = {**base, **variant_environment(VARIANTS[name], sink.port)}
            for shape in a.only or ["get_book", "list_50"]:
                per_request, out, (exports, spans) = count(
                    a.dsn, shape, a.requests, a.out, env, f"-{name}", sink
                )
                print(
                    f"{shape:10s} {name:16s} {per_request:>12,d} instructions/request  "
                    f"({exports} exports, {spans} spans; {out})",
                    flush=True,
                )
    finally:
        sink.close()


if __name__ == "__main__":
    main()
