"""Corpus → saved index, updated incrementally as documents change: THE way to open an index.

An index lives in ``$LUDAO_HOME/indexes/<key>``, where the key names the corpus paths and the
embedding model (``qa.index.location``). Opening it recomputes the passages (cheap) and compares
them with the saved ones: an unchanged corpus loads as is; a changed one reuses the saved vector
of every passage whose text is unchanged, embeds only new or edited passages and drops removed
ones. Another model, another layout or a damaged file leads to a full rebuild with a log line,
never to answers from stale or mismatched vectors.

The manifest records every document (source file, SHA-256 of its bytes, size, mtime, passage
and page counts) and the documents removed with ``ludao docs remove`` (``qa.index.admin``),
which later runs skip until ``ludao docs restore`` brings them back. Files are still read and
chunked on every run: cleaning and chunking may change between versions while the file bytes do
not, and they take far less time than embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embeddings.index import FaissIndex, IndexFileError
from qa.corpus import Corpus, DocumentRecord
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.retrieval import Retriever, dense_index_from
from qa.schema import Passage
from qa.sparse_index import SPARSE_DIR, load_bm25, save_bm25

from .admin import document_records, now, removed_documents, without_removed
from .lock import recover_interrupted_save, writer_lock
from .store import (
    DENSE,
    REBUILD_HINT,
    VECTORS,
    SavedIndex,
    corpus_hash,
    read_manifest,
    text_key,
    write_index_dir,
    write_manifest,
)
from .vectors import check_vectors_header

if TYPE_CHECKING:
    import bm25s

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)


# -- a saved folder as a retriever, and back --------------------------------------------------


class CorpusChangedError(IndexMismatchError):
    """The saved index is intact and fits the model, but holds other passages than expected.

    The one mismatch an incremental update can repair by reusing the saved vectors.
    """


def load_retriever(
    directory: str | Path,
    encoder: Encoder,
    *,
    expected_corpus_hash: str | None = None,
    **retriever_options: Any,
) -> Retriever:
    """Read and verify a saved index; BM25 is memory-mapped when saved, else rebuilt.

    The vectors file is checked by its header here and read whole only when
    :attr:`Retriever.vectors` is first used (an update that reuses vectors).

    Args:
        directory: what :func:`save_retriever` wrote.
        encoder: must be the model the index was built with (same id and dimension).
        expected_corpus_hash: ``corpus_hash`` of the passages the caller expects (freshly
            chunked documents); a different saved corpus means the documents changed.
        retriever_options: passed to ``Retriever(...)`` (``rrf_k``, weights, ``candidates``).

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        IndexMismatchError: other model, dimension, format version or corpus
            (:class:`CorpusChangedError` for the corpus).
        IndexCorruptError: missing, truncated or inconsistent files.
    """
    saved = SavedIndex.read(directory, encoder)
    directory, manifest, count = saved.directory, saved.manifest, saved.count
    if expected_corpus_hash is not None and manifest["corpus_hash"] != expected_corpus_hash:
        raise CorpusChangedError(
            f"the index at {directory} was built from other documents than the current "
            f"corpus; {REBUILD_HINT}"
        )
    check_vectors_header(directory / VECTORS, count, saved.dimension)
    try:
        dense = FaissIndex.load(directory / DENSE)
    except IndexFileError as exc:  # embeddings' own error, as the error users act on
        raise IndexCorruptError(str(exc)) from exc
    if len(dense) != count or dense.dimension != saved.dimension:
        raise IndexCorruptError(
            f"{directory / DENSE} holds {len(dense)} vectors of dimension {dense.dimension}, "
            f"the manifest says {count} of {saved.dimension}; {REBUILD_HINT}"
        )
    retriever = Retriever(
        encoder,
        saved.passages,
        dense_index=dense,
        vectors_loader=saved.vectors,
        sparse_index=load_bm25(directory, manifest.get("bm25"), count),
        **retriever_options,
    ).build()
    logger.info("loaded index of %d passages from %s", count, directory)
    return retriever


def save_retriever(
    retriever: Retriever, directory: str | Path, *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write a built retriever's index as one directory, replacing any index there, atomically.

    Args:
        retriever: after :meth:`Retriever.build`; its encoder's ``model_id`` is recorded.
        directory: where the index goes (see ``qa.index.store.write_index_dir``).
        extra: more manifest entries (:func:`update_index` records documents and exclusions).
    """
    if retriever.dense_index is None:
        raise RuntimeError("nothing to save: call build() first")
    return write_index_dir(
        directory,
        model_id=retriever.encoder.model_id,
        passages=retriever.passages,
        vectors=retriever.vectors,
        dense_index=retriever.dense_index,
        sparse_index=retriever.sparse_index,
        extra=extra,
    )


# -- the incremental update ------------------------------------------------------------------


@dataclass(frozen=True)
class IndexUpdate:
    """What :func:`update_index` did.

    ``reused + embedded`` is the number of passages in the index; ``removed`` counts saved
    passages whose text no longer occurs. ``mode`` is ``"unchanged"`` (loaded as saved),
    ``"updated"`` (saved vectors reused) or ``"built"`` (everything embedded; ``reason`` says why).
    ``excluded`` names the documents of the corpus left out because they were removed.
    """

    retriever: Retriever
    index_dir: Path
    mode: Literal["unchanged", "updated", "built"]
    reused: int
    embedded: int
    removed: int
    excluded: list[str] = field(default_factory=list)
    reason: str | None = None

    def counts(self) -> dict[str, int]:
        return {"reused": self.reused, "embedded": self.embedded, "removed": self.removed}


def update_index(
    corpus: Corpus,
    encoder: Encoder,
    index_dir: Path,
    *,
    rebuild: bool = False,
    **retriever_options: Any,
) -> IndexUpdate:
    """Bring the saved index at ``index_dir`` up to date with ``corpus`` and return it.

    The one way to open or build the index of a corpus. Documents removed with
    ``qa.index.admin.remove_document`` stay out. The whole update runs under the directory's
    writer lock, so concurrent updates (a server reload and ``ludao index``) queue up instead
    of racing.

    Args:
        corpus: the freshly read documents and passages.
        encoder: the embedding model; an index built with another one is rebuilt.
        index_dir: where the index is saved (``qa.index.location.locate_index``).
        rebuild: embed everything even if saved vectors could be reused.
        retriever_options: passed to :class:`Retriever` (``rrf_k``, weights, ``candidates``).
    """
    with writer_lock(index_dir):
        recover_interrupted_save(index_dir)
        old_manifest = _tolerant_manifest(index_dir)
        excluded = removed_documents(old_manifest)
        corpus, skipped = without_removed(corpus, excluded)
        if skipped:
            logger.info(
                "leaving out %d removed document(s): %s (`ludao docs restore` brings them back)",
                len(skipped),
                ", ".join(skipped),
            )
        previous: SavedIndex | None = None
        reason = "--rebuild" if rebuild else "no saved index"
        if not rebuild and old_manifest:
            try:
                retriever = load_retriever(
                    index_dir,
                    encoder,
                    expected_corpus_hash=corpus_hash(corpus.passages),
                    **retriever_options,
                )
            except CorpusChangedError:
                previous, reason = _saved_for_reuse(index_dir, encoder)
            except IndexMismatchError as exc:
                reason = str(exc)
                logger.info("index %s is out of date (%s); rebuilding", index_dir, exc)
            except IndexCorruptError as exc:
                reason = str(exc)
                logger.warning("index %s is damaged (%s); rebuilding", index_dir, exc)
            else:
                _refresh_records(index_dir, old_manifest, corpus.records)
                if retriever.sparse_index is not None and retriever.sparse_index_built_here:
                    _save_rebuilt_bm25(index_dir, retriever.sparse_index)
                logger.info("reusing index %s (%d passages)", index_dir, len(retriever))
                n = len(retriever)
                return IndexUpdate(retriever, index_dir, "unchanged", n, 0, 0, skipped)
        vectors, reused, embedded, removed = _vectors_for(corpus.passages, encoder, previous)
        retriever = Retriever(
            encoder,
            corpus.passages,
            dense_index=dense_index_from(vectors, encoder.dimension),
            vectors=vectors,
            **retriever_options,
        ).build()
        records = _dated(corpus.records, old_manifest)
        save_retriever(
            retriever,
            index_dir,
            extra={"documents": records, "excluded": [e.to_entry() for e in excluded]},
        )
        mode: Literal["updated", "built"] = "updated" if previous is not None else "built"
        logger.info(
            "index %s %s: %d passages reused, %d embedded, %d removed",
            index_dir,
            mode,
            reused,
            embedded,
            removed,
        )
        return IndexUpdate(
            retriever,
            index_dir,
            mode,
            reused,
            embedded,
            removed,
            skipped,
            None if previous is not None else reason,
        )


def _saved_for_reuse(index_dir: Path, encoder: Encoder) -> tuple[SavedIndex | None, str]:
    """The saved passages with their vectors verified, or ``None`` and why not."""
    try:
        saved = SavedIndex.read(index_dir, encoder)
        saved.vectors()  # verify now: a damaged file means a full rebuild, not wrong vectors
    except (IndexMismatchError, IndexCorruptError, FileNotFoundError) as exc:
        logger.warning("index %s cannot be updated (%s); rebuilding", index_dir, exc)
        return None, str(exc)
    logger.info("index %s: documents changed; updating", index_dir)
    return saved, "documents changed"


def _vectors_for(
    passages: list[Passage], encoder: Encoder, previous: SavedIndex | None
) -> tuple[np.ndarray, int, int, int]:
    """Vectors for ``passages``, reused by text where saved; and reused/embedded/removed counts."""
    keys = [text_key(p.text) for p in passages]
    stored: dict[str, int] = {}
    old_vectors = np.zeros((0, encoder.dimension), dtype=np.float32)
    removed = 0
    if previous is not None:
        old_vectors = previous.vectors()
        for row, passage in enumerate(previous.passages):
            stored.setdefault(text_key(passage.text), row)
        wanted = set(keys)
        removed = sum(1 for p in previous.passages if text_key(p.text) not in wanted)
    missing = list(dict.fromkeys(k for k in keys if k not in stored))
    texts = {k: p.text for k, p in zip(keys, passages, strict=True)}
    if missing:
        logger.info("embedding %d passages with %s", len(missing), encoder.model_id)
        fresh = np.asarray(encoder.encode_passages([texts[k] for k in missing]), dtype=np.float32)
        if fresh.shape != (len(missing), encoder.dimension):
            raise ValueError(
                f"encoder returned vectors of shape {fresh.shape} for {len(missing)} passages"
            )
    else:
        fresh = np.zeros((0, encoder.dimension), dtype=np.float32)
    fresh_row = {k: i for i, k in enumerate(missing)}
    vectors = np.empty((len(passages), encoder.dimension), dtype=np.float32)
    reused = 0
    for i, key in enumerate(keys):
        if key in stored:
            vectors[i] = old_vectors[stored[key]]
            reused += 1
        else:
            vectors[i] = fresh[fresh_row[key]]
    return vectors, reused, len(passages) - reused, removed


def _tolerant_manifest(index_dir: Path) -> dict[str, Any]:
    """The saved manifest, or ``{}`` when there is none or it cannot be read."""
    try:
        return read_manifest(index_dir)
    except (FileNotFoundError, IndexCorruptError):
        return {}


def _dated(records: list[DocumentRecord], old_manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Records as manifest entries; a file indexed before with the same bytes keeps its date."""
    before = {(r.source, r.sha256): r.indexed for r in document_records(old_manifest)}
    stamp = now()
    dated = []
    for record in records:
        indexed = before.get((record.source, record.sha256)) if record.sha256 else None
        dated.append(asdict(record) | {"indexed": indexed or stamp})
    return dated


def _save_rebuilt_bm25(index_dir: Path, bm25: bm25s.BM25) -> None:
    """Keep a BM25 that had to be rebuilt (a folder from before saved BM25, another tokeniser,
    a damaged matrix), so the next start maps it instead of tokenising every passage again.

    Written beside the index and renamed into place before the manifest vouches for it; a
    folder that cannot be written (read-only mount) only costs the rebuild again next time.
    """
    import shutil
    import tempfile

    manifest = _tolerant_manifest(index_dir)  # as _refresh_records may just have rewritten it
    work: Path | None = None
    try:
        work = Path(tempfile.mkdtemp(prefix=".bm25.", dir=index_dir))
        entry = save_bm25(bm25, work)
        shutil.rmtree(index_dir / SPARSE_DIR, ignore_errors=True)
        (work / SPARSE_DIR).rename(index_dir / SPARSE_DIR)
        write_manifest(index_dir, manifest | {"bm25": entry})
    except OSError as exc:
        logger.info(
            "could not save the rebuilt BM25 in %s (%s): rebuilt again next time", index_dir, exc
        )
        return
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    logger.info("saved the rebuilt BM25 in %s", index_dir)


def _refresh_records(
    index_dir: Path, manifest: dict[str, Any], records: list[DocumentRecord]
) -> None:
    """Rewrite only the manifest when the passages are the same but a file was touched or moved."""
    saved = document_records(manifest)
    if len(saved) == len(records) and all(
        a.same_file(b) for a, b in zip(saved, records, strict=True)
    ):
        return
    write_manifest(index_dir, manifest | {"documents": _dated(records, manifest)})
    logger.info("index %s: document records refreshed", index_dir)
