"""What several ``ludao`` commands share: settings from the command line, the groups option."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from qa.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

AS_GROUPS_OPTION = click.option(
    "--as-groups",
    default=None,
    metavar="GROUPS",
    help="Answer as a user of these comma-separated access groups ('' = everyone only); "
    "default: every document.",
)
"""``ludao ask`` and ``ludao eval`` answer as a given set of groups, for scripted access checks."""


def ray_option(what: str) -> Callable[[F], F]:
    """``--ray [ADDRESS]`` of ``ludao index`` and ``ludao serve``: ``""`` when given bare."""
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[ADDRESS]",
        help=f"{what}: host:port of the cluster's head, 'auto', or nothing (RAY_ADDRESS, else a "
        "Ray on this machine). Needs `pip install 'ludao[ray]'`.",
    )


def settings_for(corpus: tuple[str, ...], **overrides: object) -> Settings:
    """``Settings.load(**overrides)`` with ``corpus`` (when given) as the corpus paths."""
    settings = Settings.load(**overrides)
    if corpus:
        settings = replace(settings, corpus=tuple(corpus))
    return settings
