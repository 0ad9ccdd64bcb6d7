"""Argument types the commands' parsers share.

argparse names a type in its message when the type raises ValueError (``invalid _positive
value: 'x'``): the names are the ones the messages have always carried.
"""

from __future__ import annotations

import argparse


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {raw})")
    return value


def _batch_size(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 50_000:
        raise argparse.ArgumentTypeError("must be between 1 and 50000")
    return number
