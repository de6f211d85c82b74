"""``python -m qa`` is the ``ludao`` command."""

from qa.cli import main

main()
