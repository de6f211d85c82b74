"""Errors a user can act on. Each carries a message fit to show as is (CLI, HTTP 4xx, chat)."""

from __future__ import annotations


class LudaoError(Exception):
    """Base class: anything Ludao raises on purpose."""


class QuestionError(LudaoError, ValueError):
    """The question cannot be asked: empty, too long, or not text."""


class IndexMismatchError(LudaoError):
    """A saved index was built with another model, dimension or corpus; it must be rebuilt."""


class IndexCorruptError(LudaoError):
    """A saved index is unreadable or incomplete (truncated file, missing part)."""


class ModelLoadError(LudaoError):
    """A reader or embedding model could not be loaded."""
