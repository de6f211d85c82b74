"""``ludao docs list|remove|restore``: the documents of a saved index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from qa.errors import LudaoError

from .common import settings_for

T = TypeVar("T")


@click.group()
def docs() -> None:
    """The documents of a saved index: list, remove, restore.

    A removed document's passages leave the index at once (nothing is re-embedded), and later
    `ludao index` runs of the same corpus keep it out even though its file is still there, until
    `ludao docs restore` brings it back (the next `ludao index` then embeds it again). Delete or
    move the file instead to drop it for good.
    """


_CORPUS_OPTION = click.option(
    "--corpus",
    "corpus",
    multiple=True,
    type=click.Path(exists=True),
    help="The indexed files or folders, as given to `ludao index` (default: the default corpus).",
)


@docs.command(name="list")
@_CORPUS_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def docs_list(corpus: tuple[str, ...], as_json: bool) -> None:
    """List the indexed documents (id, source, passages, SHA-256, indexed time)."""
    from dataclasses import asdict

    from qa.index import list_documents, locate_index

    try:
        listing = list_documents(locate_index(settings_for(corpus)).index_dir)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {
            "index_dir": str(listing.index_dir),
            "created": listing.created,
            "documents": [asdict(d) for d in listing.documents],
            "removed": [e.to_entry() for e in listing.excluded],
        }
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo("id\tpassages\tsha256\tindexed\tsource")
    for d in listing.documents:
        digest = (d.sha256 or "-")[:12]
        click.echo(f"{d.id}\t{d.passages}\t{digest}\t{d.indexed or '-'}\t{d.source}")
    for e in listing.excluded:
        click.echo(f"{e.id}\tremoved {e.removed or ''}\t{e.source}")


def _on_index(corpus: tuple[str, ...], change: Callable[[Path, str], T], document: str) -> T:
    """Run a document change on the index of ``corpus``; a refusal is a usage error, not a trace."""
    from qa.index import locate_index

    try:
        return change(locate_index(settings_for(corpus)).index_dir, document)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc


@docs.command(name="remove")
@click.argument("document")
@_CORPUS_OPTION
def docs_remove(document: str, corpus: tuple[str, ...]) -> None:
    """Remove DOCUMENT (an id from `ludao docs list`, or its file's path) from the index."""
    from qa.index import remove_document

    record = _on_index(corpus, remove_document, document)
    click.echo(f"removed {record.id} ({record.passages} passages); `ludao docs restore` undoes it")


@docs.command(name="restore")
@click.argument("document")
@_CORPUS_OPTION
def docs_restore(document: str, corpus: tuple[str, ...]) -> None:
    """Undo `ludao docs remove DOCUMENT`; the next `ludao index` embeds it again."""
    from qa.index import restore_document

    entry = _on_index(corpus, restore_document, document)
    click.echo(f"restored {entry.id}; run `ludao index` to put it back in the index")
