"""Readers turn retrieved passages into answer spans (``TransformerReader``) or sentences."""

from __future__ import annotations

from .base import Reader, Reading
from .sentence import SentenceReader
from .transformer import TransformerReader

__all__ = ["Reader", "Reading", "SentenceReader", "TransformerReader", "load_reader"]


def load_reader(name: str, *, device: str = "cpu") -> Reader:
    """``"sentence"`` for the baseline; anything else is a span-extraction model to load."""
    if name == "sentence":
        return SentenceReader()
    return TransformerReader(name, device=device)
