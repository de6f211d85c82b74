"""Which loader reads which file suffix, and what every loader returns or raises.

A loader only extracts text: it turns a path into ``RawText`` (text plus the offsets where pages
start, for paged formats), and everything after that (cleaning, titles, page numbers) is shared
in ``qa.documents``. This module is the one thing the format modules and ``qa.documents`` both
import, so neither has to import the other: the format modules register themselves here, the
package ``qa.loaders`` imports them all, and ``qa.documents`` looks loaders up here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from qa.errors import LudaoError
from qa.ingest import SkipReason


class DocumentError(LudaoError):
    """A file that cannot be turned into a document (binary, undecodable, unsupported).

    ``reason`` is the human-readable explanation; ``kind`` the category that ingestion reports
    count by (see ``qa.ingest.SkipReason``).
    """

    def __init__(self, path: str | Path, reason: str, kind: SkipReason = "unreadable") -> None:
        self.path = str(path)
        self.reason = reason
        self.kind: SkipReason = kind
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class RawText:
    """What a loader extracts: text as found, and where pages 1, 2, ... start in it (if paged).

    ``hard_breaks`` says that every line break in ``text`` ends a paragraph (DOCX paragraphs,
    HTML blocks, table rows), so cleaning must not join lines as it does for hard-wrapped plain
    text and PDF lines, where a break usually falls inside a sentence.
    """

    text: str
    page_starts: tuple[int, ...] = ()
    hard_breaks: bool = False


Loader = Callable[[Path], RawText]
_LOADERS: dict[str, Loader] = {}


def register_loader(suffixes: str | Iterable[str], func: Loader) -> Loader:
    """Use ``func`` for files ending in ``suffixes`` (``".pdf"`` or ``"pdf"``, any case).

    Returns ``func``, so it can also be used as ``register_loader(".x", f)`` at module level by
    the module that defines a format. A later registration for a suffix replaces an earlier one.
    """
    for suffix in [suffixes] if isinstance(suffixes, str) else suffixes:
        _LOADERS["." + suffix.lower().lstrip(".")] = func
    return func


def registered_suffixes() -> frozenset[str]:
    """Suffixes (lower case, with the dot) that folder walks pick up."""
    return frozenset(_LOADERS)


def loader_for(path: Path) -> Loader | None:
    """The loader registered for ``path``'s suffix (any case), or ``None``."""
    return _LOADERS.get(path.suffix.lower())
