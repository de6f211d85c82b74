"""DOCX (Word 2007+): body paragraphs and tables, in the order they appear.

Each paragraph becomes one line and each table row one line with its cells joined by
``" | "`` (a tab would be collapsed to a space by cleaning, and the row must still read as a
row: ``部门 | 人数 | 预算``). Lines are hard breaks: a Word paragraph is a paragraph, never a
line wrapped mid-sentence. A cell merged across columns is read once. Headers, footers,
footnotes, comments and text boxes are left out: they repeat on every page or sit outside the
reading order. A table nested in a cell is read into that cell, its rows separated by ``"; "``.

A password-protected DOCX is not a ZIP package at all but an OLE compound file holding the
encrypted package; it is reported as ``encrypted``. A legacy ``.doc`` renamed to ``.docx`` is
also an OLE file, without the encryption streams, and is reported as ``broken``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import DocumentError, RawText, register_loader

if TYPE_CHECKING:
    from docx.table import Table, _Cell

logger = logging.getLogger(__name__)

CELL_SEPARATOR = " | "
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")


def load_docx(path: Path) -> RawText:
    """Paragraphs and table rows as lines, in document order."""
    import docx
    from docx.table import Table

    with path.open("rb") as handle:
        head = handle.read(len(_OLE_MAGIC))
    if head == _OLE_MAGIC:
        if _ENCRYPTION_STREAM in path.read_bytes():
            raise DocumentError(path, "encrypted: a password-protected Word file", "encrypted")
        raise DocumentError(path, "not a DOCX package (a legacy .doc file?)", "broken")
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(path, f"broken DOCX: {exc}", "broken") from exc
    except Exception as exc:  # python-docx's PackageNotFoundError, lxml's XMLSyntaxError, ...
        raise DocumentError(path, f"broken DOCX: {type(exc).__name__}: {exc}", "broken") from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(_table_rows(block))
        else:
            lines.append(block.text)
    logger.debug("%s: %d lines", path, len(lines))
    return RawText("\n".join(lines), hard_breaks=True)


def _table_rows(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a horizontally merged cell repeats for every column
                continue
            previous = cell._tc
            cells.append(_cell_text(cell))
        if any(cells):
            yield CELL_SEPARATOR.join(cells)


def _cell_text(cell: _Cell) -> str:
    from docx.table import Table

    parts = [
        "; ".join(_table_rows(block)) if isinstance(block, Table) else block.text
        for block in cell.iter_inner_content()
    ]
    return " ".join(" ".join(parts).split())


register_loader(".docx", load_docx)
