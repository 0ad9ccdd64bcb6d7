"""Summarise a py-spy collapsed-stack profile (``py-spy record --format raw``).

Usage: python bench/profiles/summarise.py FILE.folded [--top N] [--top-self N] [--all-threads]

Prints the top frames by inclusive share of the main thread's samples, the top frames by self
share, then the share of samples per bucket (sqlalchemy, asyncpg, fastapi, ...). Record with
``--threads`` so the main thread can be told apart; without thread frames every sample counts.

Frames are ``function (package/module.py:line)``; line numbers are dropped so that one function
is one row. The bootstrap (everything from the entry script down to the event loop's
``asyncio/runners.py`` and ``base_events.py`` frames) is skipped: it sits under every sample.

Buckets, two columns:
  self       each sample goes to the bucket of its innermost frame that belongs to a named
             bucket (a leaf in asyncio or typing called by fastapi counts for fastapi); samples
             with no such frame are "other". The column adds up to 100%.
  inclusive  samples with any frame of the bucket on the stack (columns overlap).

Samples taken inside a SQLAlchemy greenlet show only the greenlet's own stack (py-spy cannot
follow the switch), so the callers of ``AsyncSession.execute`` are missing from them; the
header gives their share.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BUCKETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("sqlalchemy", frozenset({"sqlalchemy"})),
    ("asyncpg", frozenset({"asyncpg"})),
    ("fastapi", frozenset({"fastapi"})),
    ("starlette", frozenset({"starlette"})),
    ("pydantic", frozenset({"pydantic", "pydantic_core"})),
    ("dependency_injector", frozenset({"dependency_injector"})),
    ("structlog/logging", frozenset({"structlog", "logging"})),
    ("uvicorn/httptools", frozenset({"uvicorn", "httptools"})),
    ("json/orjson", frozenset({"json", "orjson"})),
    ("library/shared", frozenset({"library", "shared"})),
)
OTHER = "other"
_BUCKET_OF = {package: name for name, packages in BUCKETS for package in packages}

_THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)(?::\s*(?P<name>.*))?$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
# The frames from the entry script down to the event loop: under every sample, never the cost.
_BOOTSTRAP = re.compile(r"\((asyncio/runners\.py|asyncio/base_events\.py|asyncio/events\.py)\)$")
_ENTRY = "<module>"


@dataclass(frozen=True)
class Sample:
    """One collapsed stack (outermost frame first) and how many times it was seen."""

    thread: str
    frames: tuple[str, ...]
    count: int


def frame_key(frame: str) -> str:
    """``func (pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['func']} ({match['path']})"


def bucket_of(frame: str) -> str | None:
    """The bucket a frame's package belongs to, or None."""
    match = _FRAME.match(frame)
    if match is None:
        return None
    package = match["path"].split("/", 1)[0].removesuffix(".py")
    return _BUCKET_OF.get(package)


def parse(lines: Iterable[str]) -> list[Sample]:
    """Read ``frame;frame;... COUNT`` lines; a leading ``thread (tid): name`` frame is split off."""
    samples: list[Sample] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise ValueError(f"not a collapsed stack line: {line[:120]!r}")
        frames = stack.split(";")
        thread = ""
        head = _THREAD.match(frames[0])
        if head is not None:
            thread = head["name"] or head["tid"]
            frames = frames[1:]
        samples.append(Sample(thread, tuple(frame_key(f) for f in frames), int(count)))
    return samples


def work_frames(frames: Sequence[str]) -> tuple[str, ...]:
    """The frames below the bootstrap (the whole stack when it has none, as in a greenlet)."""
    last = -1
    for index, frame in enumerate(frames):
        if _BOOTSTRAP.search(frame):
            last = index
    return tuple(frames[last + 1 :])


def self_bucket(frames: Sequence[str]) -> str:
    """The bucket of the innermost frame that has one."""
    for frame in reversed(frames):
        bucket = bucket_of(frame)
        if bucket is not None:
            return bucket
    return OTHER


def _leaf(frames: Sequence[str]) -> str:
    return frames[-1] if frames else "(no Python frame)"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def summarise(
    samples: Sequence[Sample], *, top: int, top_self: int = 10, all_threads: bool = False
) -> str:
    """The report for one profile, as text."""
    total = sum(s.count for s in samples)
    threads: Counter[str] = Counter()
    for sample in samples:
        threads[sample.thread or "(no thread frame)"] += sample.count
    has_threads = any(s.thread for s in samples)
    everything = all_threads or not has_threads
    chosen = [s for s in samples if everything or s.thread == "MainThread"]
    n = sum(s.count for s in chosen)

    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    bucket_self: Counter[str] = Counter()
    bucket_incl: Counter[str] = Counter()
    other_leaf: Counter[str] = Counter()
    greenlet = 0
    for sample in chosen:
        frames = work_frames(sample.frames)
        if sample.frames and not sample.frames[0].startswith(_ENTRY):
            greenlet += sample.count
        for frame in set(frames):
            inclusive[frame] += sample.count
        if frames:
            self_time[frames[-1]] += sample.count
        owner = self_bucket(frames)
        bucket_self[owner] += sample.count
        if owner == OTHER:
            other_leaf[_leaf(sample.frames)] += sample.count
        for bucket in {b for b in map(bucket_of, frames) if b is not None}:
            bucket_incl[bucket] += sample.count

    scope = "all threads" if everything else "MainThread"
    out = [
        f"samples: {total} in all; {n} in {scope} "
        f"({', '.join(f'{name} {c}' for name, c in threads.most_common())})",
        f"samples rooted in a greenlet (callers not visible): {greenlet} ({_pct(greenlet, n)})",
        "",
        f"top {top} frames by inclusive share ({scope}, bootstrap frames skipped)",
        f"{'incl':>6} {'self':>6}  frame",
    ]
    for frame, count in inclusive.most_common(top):
        out.append(f"{_pct(count, n)} {_pct(self_time[frame], n)}  {frame}")
    out += ["", f"top {top_self} frames by self share ({scope})", f"{'self':>6}  frame"]
    for frame, count in self_time.most_common(top_self):
        out.append(f"{_pct(count, n)}  {frame}")
    out += ["", f"buckets ({scope})", f"{'bucket':<20} {'self':>6} {'incl':>6}"]
    for name in [*(b for b, _ in BUCKETS), OTHER]:
        incl = _pct(bucket_incl[name], n) if name != OTHER else ""
        out.append(f"{name:<20} {_pct(bucket_self[name], n)} {incl:>6}")
    if other_leaf:
        out += ["", "other: top innermost frames"]
        for frame, count in other_leaf.most_common(5):
            out.append(f"{_pct(count, n)}  {frame}")
    rest: Counter[str] = Counter()
    for sample in samples:
        if not everything and sample.thread != "MainThread":
            rest[f"{sample.thread}: {_leaf(sample.frames)}"] += sample.count
    if rest:
        out += ["", "other threads: top innermost frames (share of all samples)"]
        for frame, count in rest.most_common(5):
            out.append(f"{_pct(count, total)}  {frame}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("file", type=Path, help="collapsed stacks from py-spy --format raw")
    parser.add_argument("--top", type=int, default=25, help="how many frames to list (25)")
    parser.add_argument(
        "--top-self", type=int, default=10, help="how many frames to list by self share (10)"
    )
    parser.add_argument(
        "--all-threads", action="store_true", help="count every thread, not only MainThread"
    )
    args = parser.parse_args(argv)
    with args.file.open(encoding="utf-8") as lines:
        samples = parse(lines)
    print(summarise(samples, top=args.top, top_self=args.top_self, all_threads=args.all_threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
