"""Where the index of a corpus lives, so that every command finds the same folder.

The folder is named after the resolved corpus paths and the embedding model's id, under
``$LUDAO_HOME/indexes``: the same documents embedded by another model (or at int8, which changes
the id) get another folder, and an index is never searched with vectors of another model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embeddings.encoder import Encoder
    from qa.config import Settings


def encoder_from_settings(settings: Settings) -> Encoder:
    """The embedding model as ``settings`` describe it (constructing it loads no model).

    The index folder is keyed by the encoder's model id, which int8 precision changes, so
    :func:`locate_index` builds the encoder to say where the index is.
    """
    from embeddings.encoder import SentenceEncoder

    return SentenceEncoder(
        settings.embedding_model,
        device=settings.device,
        query_engine=settings.query_engine,  # type: ignore[arg-type]  # checked there
        passage_engine=settings.passage_engine,  # type: ignore[arg-type]
        precision=settings.embedding_precision,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class IndexLocation:
    """The embedding model of an index and the folder where the index lives."""

    encoder: Encoder
    index_dir: Path


def locate_index(settings: Settings, paths: Sequence[str | Path] | None = None) -> IndexLocation:
    """Where the index of ``paths`` (default: ``settings.corpus``) lives, and its encoder.

    No model is loaded to say so. Every command that finds an index goes through here, so
    ``ludao index``, ``ludao docs``, ``ludao eval`` and the chat always agree on the folder: a
    stable name for the resolved corpus paths and the embedding model, under the Ludao home.
    """
    encoder = encoder_from_settings(settings)
    paths = settings.corpus if paths is None else paths
    key = "\0".join(sorted(str(Path(p).resolve()) for p in paths)) + "\0" + encoder.model_id
    folder = settings.home_dir / "indexes" / hashlib.sha1(key.encode()).hexdigest()[:16]
    return IndexLocation(encoder=encoder, index_dir=folder)
