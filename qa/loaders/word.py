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
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
"""Largest sum of uncompressed part sizes read; python-docx holds the whole XML tree in memory
(a 78 MB ``document.xml`` took 2.1 GB and minutes), so a bigger package is refused unread."""
MAX_RATIO = 100
"""Largest compression ratio of one part over 1 MiB: Word's XML deflates about 5-20 times;
hundreds of times is repetition made to exhaust the parser."""
_RATIO_FLOOR = 1024 * 1024
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
    _check_package_size(path)
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


def _check_package_size(path: Path) -> None:
    """Refuse a decompression bomb from the ZIP directory alone, before any part is inflated.

    The sizes in the central directory are what the archive claims; ``zipfile`` stops reading a
    part at its declared size, so a part cannot inflate past what is checked here.
    """
    try:
        with zipfile.ZipFile(path) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(path, f"broken DOCX: {exc}", "broken") from exc
    total = sum(p.file_size for p in parts)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise DocumentError(
            path,
            f"too large: {total // 2**20} MiB uncompressed (limit "
            f"{MAX_UNCOMPRESSED_BYTES // 2**20} MiB)",
            "broken",
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > _RATIO_FLOOR and ratio > MAX_RATIO:
            raise DocumentError(
                path,
                f"suspicious package: {part.filename} is {ratio:.0f} times its compressed size "
                f"uncompressed (limit {MAX_RATIO})",
                "broken",
            )


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
