"""PDF: the text layer, page by page, with where each page starts (citations say "p. 3").

pypdf is pure Python and reads the file through an open handle, so only the page being read is
decoded at a time. It also keeps every object it has parsed, fonts and content streams included,
which for a long report grows with the page count: the cache is emptied every
``PAGES_PER_CACHE`` pages (objects are re-read from the file when needed again, fonts cost a
re-parse). Memory then stays at the extracted text plus a few pages' worth of objects.

Encrypted files are opened with the empty password (owner-password-only PDFs, "printing not
allowed" and the like, are common in offices and readable); a file that needs a real password
is skipped as ``encrypted``. A damaged file is skipped as ``broken``; a file without a text
layer (a scan) is skipped as ``empty``, since OCR is out of scope.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import DocumentError, RawText, register_loader

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 50
"""Log progress (INFO) every this many pages."""
PAGES_PER_CACHE = 25
"""Empty pypdf's parsed-object cache after this many pages."""


def load_pdf(path: Path) -> RawText:
    """Extract the text of every page; pages are separated by a line break."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    parts: list[str] = []
    page_starts: list[int] = []
    length = 0
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(1024):
            raise DocumentError(path, "not a PDF file (no %PDF- header)", "broken")
        handle.seek(0)
        try:
            reader = PdfReader(handle)
            _unlock(reader, path)
            count = len(reader.pages)
        except DocumentError:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DocumentError(path, f"damaged or truncated PDF: {_why(exc)}", "broken") from exc
        for number in range(count):
            try:
                text = reader.pages[number].extract_text() or ""
            except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DocumentError(
                    path, f"damaged PDF: page {number + 1}: {_why(exc)}", "broken"
                ) from exc
            page_starts.append(length)
            parts.append(text)
            parts.append("\n")
            length += len(text) + 1
            if (number + 1) % PAGES_PER_CACHE == 0:
                _forget_parsed_objects(reader)
            if (number + 1) % PROGRESS_EVERY == 0:
                logger.info("%s: %d/%d pages", path, number + 1, count)
    if not any(part.strip() for part in parts):
        raise DocumentError(
            path, f"no text layer in {count} pages (scanned? OCR is not supported)", "empty"
        )
    return RawText("".join(parts), tuple(page_starts))


def _unlock(reader: PdfReader, path: Path) -> None:
    """Open an encrypted PDF with the empty password, or say why it cannot be read."""
    if not reader.is_encrypted:
        return
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    try:
        opened = reader.decrypt("")
    except DependencyError as exc:
        raise DocumentError(
            path, f"encrypted with a cipher this installation cannot read: {exc}", "encrypted"
        ) from exc
    if opened == PasswordType.NOT_DECRYPTED:
        raise DocumentError(path, "encrypted: it needs a password to open", "encrypted")


def _forget_parsed_objects(reader: PdfReader) -> None:
    cache = getattr(reader, "resolved_objects", None)
    if isinstance(cache, dict):
        cache.clear()


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


register_loader(".pdf", load_pdf)
