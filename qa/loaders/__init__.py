"""File formats: one module per format, each registering its loader in ``qa.loaders.registry``.

Importing this package (or anything in it) imports every format module, so the registry is full
whenever it can be consulted, and ``qa.documents`` needs only ``loader_for`` from here. The
modules import their parsers (pypdf, python-docx, BeautifulSoup) inside the loader functions:
importing ``qa`` stays cheap, and a missing parser fails only the files that need it, as a
skipped file with a reason.

Modules are named after what they read, not after the parser (``webpage`` rather than ``html``,
``word`` rather than ``docx``), so that none shadows the standard library or a parser package.
"""

from __future__ import annotations

from . import pdf, text, webpage, word
from .registry import (
    DocumentError,
    Loader,
    RawText,
    loader_for,
    register_loader,
    registered_suffixes,
)
from .text import read_text_file

__all__ = [
    "DocumentError",
    "Loader",
    "RawText",
    "loader_for",
    "pdf",
    "read_text_file",
    "register_loader",
    "registered_suffixes",
    "text",
    "webpage",
    "word",
]
