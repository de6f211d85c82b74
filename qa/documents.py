"""Load one file into a cleaned ``Document`` that remembers where each character came from.

A loader registered for the file's suffix (``qa.loaders``) extracts the text; ``qa.cleaning``
cleans it and maps every character back to the file, because citations must point into the file
the user has. This module joins the two and adds what a document needs beyond its text: a
stable id, a title, page numbers and where paragraphs do not follow each other.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from pathlib import Path

from qa.chunking import ends_sentence
from qa.cleaning import clean
from qa.loaders import DocumentError, loader_for
from qa.schema import Document

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60


def load_document(path: str | Path) -> Document:
    """Load, decode and clean one file with the loader registered for its suffix.

    ``id`` is the file name stem (characters other than letters, digits, ``_.-`` replaced by
    ``_``), so it is stable across runs and machines; ``title`` is the first paragraph when it
    is a short line that does not end a sentence (a title), else the stem.
    ``paragraph_gaps`` are where a paragraph does not follow the previous one in the file, and
    ``dropped_paragraphs`` counts the duplicates cleaning left out.

    For paged formats, page starts are added to the gaps too: a passage then never runs from
    one page into the next, except within a paragraph that itself continues across the page
    break, so a passage's page (where it starts) is the page its answer is on. Without this, a
    short page 1 is packed with page 2 and an answer from page 2 is cited as "p. 1".

    Raises ``DocumentError`` (with a ``kind``) for anything wrong with the file; a loader that
    fails in an unforeseen way on a damaged file is reported as ``broken``, never a traceback.
    """
    path = Path(path)
    if not path.exists():
        raise DocumentError(path, "no such file or folder", "missing")
    loader = loader_for(path)
    if loader is None:
        raise DocumentError(
            path, f"no loader for {path.suffix or 'suffix-less'} files", "unsupported"
        )
    if not path.is_file():
        raise DocumentError(path, "not a file", "unreadable")
    if path.stat().st_size == 0:
        raise DocumentError(path, "empty file", "empty")
    try:
        raw = loader(path)
    except (DocumentError, OSError):
        raise
    except Exception as exc:  # third-party parsers raise anything on hostile input
        logger.debug("loader failed on %s", path, exc_info=True)
        raise DocumentError(path, f"broken: {type(exc).__name__}: {exc}", "broken") from exc
    cleaned = clean(raw.text, hard_breaks=raw.hard_breaks)
    if not cleaned.text:
        raise DocumentError(path, "no text", "empty")
    last = len(cleaned.offsets) - 1  # the final entry is the end offset, not a character
    pages = tuple(
        (bisect_left(cleaned.offsets, start, 0, last), number)
        for number, start in enumerate(raw.page_starts, start=1)
    )
    logger.info(
        "loaded %s: %d characters, %d duplicate paragraphs dropped",
        path,
        len(cleaned.text),
        cleaned.dropped,
    )
    return Document(
        id=re.sub(r"[^\w.-]+", "_", path.stem) or "document",
        title=_title(cleaned.text, path.stem),
        text=cleaned.text,
        source=str(path),
        offsets=tuple(cleaned.offsets),
        pages=pages,
        paragraph_gaps=tuple(sorted({*cleaned.gaps, *(s for s, _ in pages if s)})),
        dropped_paragraphs=cleaned.dropped,
    )


def _title(text: str, fallback: str) -> str:
    first = text.split("\n\n", 1)[0].lstrip("#").strip()
    if first and len(first) <= TITLE_MAX_CHARS and not ends_sentence(first):
        return first
    return fallback
