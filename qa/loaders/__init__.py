"""File formats beyond plain text: one module per format, each registering its loader.

``qa.documents`` imports this package at its end, so every loader is registered whenever
documents are loaded. The modules import their parsers (pypdf, python-docx, BeautifulSoup)
inside the loader functions: importing ``qa`` stays cheap, and a missing parser fails only the
files that need it, as a skipped file with a reason.
"""

from __future__ import annotations

from . import docx, html, pdf

__all__ = ["docx", "html", "pdf"]
