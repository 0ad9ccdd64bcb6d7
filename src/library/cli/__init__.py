"""The ``library`` command: serve the API, migrate the database, or run both for development.

One module per command, each with its parser (``add_parser``) and its work (``run``):
``serve``, ``migrate``, ``dev``, ``revision``, ``token``, ``import_catalog`` (``library
import``), ``export_catalog`` (``library export``) and ``seed``. ``database`` holds what several
commands share: the embedded development database and the server's least-privilege role.
"""

from __future__ import annotations

import argparse

from library.cli import (
    dev,
    export_catalog,
    import_catalog,
    migrate,
    revision,
    seed,
    serve,
    token,
)

# In the order ``library --help`` lists them.
COMMANDS = {
    "serve": serve,
    "migrate": migrate,
    "dev": dev,
    "revision": revision,
    "token": token,
    "import": import_catalog,
    "export": export_catalog,
    "seed": seed,
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``library`` console script."""
    parser = argparse.ArgumentParser(prog="library", description="The library catalog service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(commands)
    args = parser.parse_args(argv)
    # import and export exit with their documented status; token prints and returns.
    if args.command == "import":
        raise SystemExit(import_catalog.run(args))
    if args.command == "token":
        token.run(args)
        return
    if args.command == "export":
        raise SystemExit(export_catalog.run(args))
    try:
        COMMANDS[args.command].run(args)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
