"""What several ``ludao`` commands share: settings from the command line, the groups option."""

from __future__ import annotations

from dataclasses import replace

import click

from qa.config import Settings

AS_GROUPS_OPTION = click.option(
    "--as-groups",
    default=None,
    metavar="GROUPS",
    help="Answer as a user of these comma-separated access groups ('' = everyone only); "
    "default: every document.",
)
"""``ludao ask`` and ``ludao eval`` answer as a given set of groups, for scripted access checks."""


def settings_for(corpus: tuple[str, ...], **overrides: object) -> Settings:
    """``Settings.load(**overrides)`` with ``corpus`` (when given) as the corpus paths."""
    settings = Settings.load(**overrides)
    if corpus:
        settings = replace(settings, corpus=tuple(corpus))
    return settings
