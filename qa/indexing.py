"""Corpus → passages → saved index, reused while the corpus and model are unchanged.

An index lives in ``$LUDAO_HOME/indexes/<key>``, where the key names the corpus paths and the
embedding model. Opening it recomputes the passages (cheap) and checks their hash against the
manifest: a changed corpus, another model or a damaged file leads to a rebuild with a log line,
never to answers from stale or mismatched vectors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from embeddings.encoder import Encoder

from .chunking import chunk
from .documents import load_documents
from .errors import IndexCorruptError, IndexMismatchError, LudaoError
from .retrieval import Retriever, corpus_hash
from .schema import Document, Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    passages: list[Passage]


def read_corpus(paths: Sequence[str | Path], *, max_chars: int, min_chars: int) -> Corpus:
    """Load every supported file under ``paths`` and chunk it into passages."""
    documents = list(load_documents([Path(p) for p in paths]))
    if not documents:
        raise LudaoError(f"no readable documents found in {', '.join(map(str, paths))}")
    passages = [
        p for doc in documents for p in chunk(doc, max_chars=max_chars, min_chars=min_chars)
    ]
    logger.info("%d documents, %d passages", len(documents), len(passages))
    return Corpus(documents=documents, passages=passages)


def index_dir_for(paths: Sequence[str | Path], model_id: str, home: Path) -> Path:
    """A stable folder name for this corpus location and embedding model."""
    key = "\0".join(sorted(str(Path(p).resolve()) for p in paths)) + "\0" + model_id
    return home / "indexes" / hashlib.sha1(key.encode()).hexdigest()[:16]


def open_index(
    corpus: Corpus,
    encoder: Encoder,
    index_dir: Path,
    *,
    rebuild: bool = False,
    **retriever_options: object,
) -> Retriever:
    """Load the saved index for ``corpus`` if it is current and intact, else build and save it."""
    expected = corpus_hash(corpus.passages)
    if not rebuild and (index_dir / "manifest.json").exists():
        try:
            retriever = Retriever.load(
                index_dir, encoder, expected_corpus_hash=expected, **retriever_options
            )
            logger.info("reusing index %s (%d passages)", index_dir, len(corpus.passages))
            return retriever
        except IndexMismatchError as exc:
            logger.info("index %s is out of date (%s); rebuilding", index_dir, exc)
        except IndexCorruptError as exc:
            logger.warning("index %s is damaged (%s); rebuilding", index_dir, exc)
    retriever = Retriever(encoder, corpus.passages, **retriever_options)
    retriever.build()
    retriever.save(index_dir)
    return retriever
