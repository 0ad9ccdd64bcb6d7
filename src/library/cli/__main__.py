"""``python -m library.cli``: the ``library`` command."""

from library.cli import main

main()
