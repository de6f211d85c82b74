"""Readers turn retrieved passages into answer spans (``TransformerReader``) or sentences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embeddings.precision import Precision

from .base import Reader, Reading
from .glossing import GlossingReader
from .sentence import SentenceReader
from .transformer import TransformerReader

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "GlossingReader",
    "Reader",
    "Reading",
    "SentenceReader",
    "TransformerReader",
    "load_reader",
    "reader_from_settings",
]


def load_reader(
    name: str,
    *,
    device: str = "cpu",
    precision: Precision = "auto",
    max_passages: int | None = None,
    early_exit: float | None = None,
    max_length: int | None = None,
    stride: int | None = None,
    engine: str = "lean",
) -> Reader:
    """``"sentence"`` for the baseline; anything else is a span-extraction model to load.

    The keyword options are the neural reader's speed settings (see ``TransformerReader``);
    ``None`` keeps what the model's own ``reader.json`` says.
    """
    if name == "sentence":
        return SentenceReader()
    return TransformerReader(
        name,
        device=device,
        precision=precision,
        max_passages=max_passages,
        early_exit=early_exit,
        max_length=max_length,
        stride=stride,
        engine=engine,
    )


def reader_from_settings(settings: Settings) -> Reader:
    """The reader ``settings`` ask for, with its speed options (0 in a setting means "off"),
    reading English questions with Chinese glosses when ``gloss_english`` is on."""
    reader = load_reader(
        settings.reader,
        device=settings.device,
        precision=settings.reader_precision,  # type: ignore[arg-type]  # checked by the reader
        max_passages=settings.reader_passages or None,
        early_exit=settings.reader_early_exit or None,
        max_length=settings.reader_max_length or None,
        stride=settings.reader_stride or None,
        engine=settings.reader_engine,
    )
    if settings.gloss_english and not isinstance(reader, SentenceReader):
        return GlossingReader(reader)
    return reader
