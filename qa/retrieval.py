"""Hybrid retrieval: dense vectors and BM25, fused by weighted reciprocal rank.

Dense retrieval finds paraphrases (报销 ~ 费用返还) but is vague about exact figures and names;
BM25 over jieba tokens nails 2024年 or 信息中心 but knows no synonyms. Reciprocal-rank fusion
(Cormack et al., 2009) needs no score calibration between the two: each side contributes
``weight / (rrf_k + rank)`` for the passages it ranks in its top ``candidates``.

An index is saved as one directory (manifest, passages, FAISS file, raw vectors) and verified on
load, so a question is never answered from an index built with another model or another set of
documents. The raw float32 vectors are kept beside the FAISS file because not every FAISS
structure can give its vectors back, and an incremental update (``qa.indexing``) reuses them for
passages whose text did not change. BM25 is not saved: rebuilding it from the passages takes well
under a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.index import FaissIndex, fsync_dir
from qa.errors import IndexCorruptError, IndexMismatchError, QuestionError
from qa.schema import Hit, Passage
from qa.tokenize import tokenize_for_search

if TYPE_CHECKING:
    import bm25s

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the saved directory layout; bump it when the layout or tokenisation changes.

2: raw vectors in ``vectors.npy`` (with their SHA-256 in the manifest) and per-document records.
"""
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
DENSE = "dense.faiss"
VECTORS = "vectors.npy"
INDEX_FILES = frozenset({MANIFEST, PASSAGES, DENSE, VECTORS})
REBUILD_HINT = "rebuild it with `ludao index --rebuild`"
_PASSAGE_FIELDS = {f.name for f in dataclasses.fields(Passage)}
_RESERVED_KEYS = frozenset(
    {
        "format_version",
        "embedding_model",
        "dimension",
        "index_kind",
        "passage_count",
        "corpus_hash",
        "vectors_sha256",
        "created",
    }
)


class CorpusChangedError(IndexMismatchError):
    """The saved index is intact and fits the model, but holds other passages than expected.

    The one mismatch an incremental update can repair by reusing the saved vectors.
    """


def text_key(text: str) -> str:
    """What a stored vector is reused by: the SHA-256 of the passage text it embeds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def corpus_hash(passages: Iterable[Passage]) -> str:
    """SHA-256 over passage ids and texts, in order: the identity of an indexed corpus.

    Each ``[id, text]`` pair is JSON-encoded on its own line, so no choice of characters in ids
    or texts can make two different corpora hash alike.
    """
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(json.dumps([passage.id, passage.text], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def rrf_fuse(rankings: Iterable[tuple[list[int], float]], *, rrf_k: int) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion.

    Args:
        rankings: ``(ids best first, weight)`` per retriever; the id at position ``i`` has rank
            ``i + 1``.
        rrf_k: the smoothing constant; larger values flatten the difference between ranks.

    Returns:
        ``(id, Σ weight / (rrf_k + rank))`` best first; ties go to the id with the better single
        rank, then the smaller id, so results are deterministic.
    """
    scores: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ids, weight in rankings:
        for position, doc in enumerate(ids):
            rank = position + 1
            scores[doc] = scores.get(doc, 0.0) + weight / (rrf_k + rank)
            best_rank[doc] = min(best_rank.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best_rank[item[0]], item[0]))


class Retriever:
    """Dense + BM25 retrieval over a fixed list of passages.

    ``__init__`` only validates; :meth:`build` embeds the passages and builds BM25, or
    :meth:`load` reads a saved index. Searching is thread-safe once built.

    Args:
        encoder: the embedding model; its ``model_id`` and ``dimension`` are recorded on save.
        passages: the corpus, in index order (row ``i`` of the dense index is ``passages[i]``).
        dense_index: a FAISS index already built for ``passages`` (``load`` passes the saved one).
        vectors: the ``(len(passages), dimension)`` float32 rows ``dense_index`` was built from;
            :meth:`save` writes them, and :meth:`build` builds ``dense_index`` from them when
            only they are given.
        rrf_k: reciprocal-rank-fusion constant.
        dense_weight: weight of the dense ranking; ``0`` turns dense retrieval off at search time.
        sparse_weight: weight of the BM25 ranking; ``0`` turns BM25 off at search time.
        candidates: how many passages each side ranks before fusion.
    """

    def __init__(
        self,
        encoder: Encoder,
        passages: list[Passage],
        *,
        dense_index: FaissIndex | None = None,
        vectors: np.ndarray | None = None,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        sparse_weight: float = 1.0,
        candidates: int = 50,
    ) -> None:
        if rrf_k < 0:
            raise ValueError(f"rrf_k must be non-negative, got {rrf_k}")
        if dense_weight < 0 or sparse_weight < 0:
            raise ValueError("retrieval weights must be non-negative")
        if dense_weight == 0 and sparse_weight == 0:
            raise ValueError("dense_weight and sparse_weight are both 0: nothing would be searched")
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        seen: set[str] = set()
        for passage in passages:
            if passage.id in seen:
                raise ValueError(f"duplicate passage id {passage.id!r}")
            seen.add(passage.id)
        if dense_index is not None and len(dense_index) != len(passages):
            raise ValueError(
                f"dense index holds {len(dense_index)} vectors for {len(passages)} passages"
            )
        if vectors is not None:
            vectors = _check_vectors(vectors, len(passages), "vectors")
        self.encoder = encoder
        self.passages: tuple[Passage, ...] = tuple(passages)
        self.dense_index = dense_index
        self._vectors = vectors
        self._vectors_file: tuple[Path, str | None] | None = None
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.sparse_weight = sparse_weight
        self.candidates = candidates
        self._bm25: bm25s.BM25 | None = None
        self._sparse_built = False
        self._build_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.passages)

    def __repr__(self) -> str:
        return (
            f"Retriever({len(self.passages)} passages, model={self.encoder.model_id!r}, "
            f"dense_weight={self.dense_weight}, sparse_weight={self.sparse_weight})"
        )

    @property
    def is_built(self) -> bool:
        return self.dense_index is not None and self._sparse_built

    @property
    def corpus_hash(self) -> str:
        return corpus_hash(self.passages)

    # -- building ---------------------------------------------------------------------------

    def build(self, show_progress: bool | None = None) -> Retriever:
        """Embed the passages (unless a dense index was given) and build BM25; returns self."""
        with self._build_lock:
            if self.dense_index is None:
                self.dense_index = self._embed(show_progress)
            if not self._sparse_built:
                self._bm25 = self._build_bm25()
                self._sparse_built = True
        return self

    def _embed(self, show_progress: bool | None) -> FaissIndex:
        if self._vectors is None:
            logger.info("embedding %d passages with %s", len(self.passages), self.encoder.model_id)
            vectors = self.encoder.encode_passages(
                [p.text for p in self.passages], show_progress=show_progress
            )
            self._vectors = _check_vectors(vectors, len(self.passages), "encoder output")
        return dense_index_from(self._vectors, self.encoder.dimension)

    @property
    def vectors(self) -> np.ndarray:
        """The passage vectors, row ``i`` for ``passages[i]`` (read from disk after :meth:`load`).

        Raises:
            RuntimeError: nothing was embedded yet.
            IndexCorruptError: the saved vectors file was damaged after loading.
        """
        if self._vectors is None:
            if self._vectors_file is None:
                raise RuntimeError(
                    "no vectors: call build() first (a retriever given only a dense_index "
                    "needs vectors= as well to be saved)"
                )
            path, digest = self._vectors_file
            self._vectors = read_vectors(path, len(self.passages), self.encoder.dimension, digest)
        return self._vectors

    def _build_bm25(self) -> bm25s.BM25 | None:
        import bm25s

        # bm25s sets its own logger to DEBUG when imported, which floods quiet CLI runs; leave
        # its level to the application unless someone asked for debug output.
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.getLogger("bm25s").setLevel(logging.WARNING)
        corpus = [tokenize_for_search(p.text) for p in self.passages]
        if not any(corpus):
            return None
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        logger.debug("BM25 over %d passages, %d terms", len(corpus), len(bm25.vocab_dict))
        return bm25

    # -- searching --------------------------------------------------------------------------

    def search(self, query: str, top_k: int = 5) -> list[Hit]:
        """The ``top_k`` passages for ``query``, best first, with fused scores and both ranks.

        Raises:
            QuestionError: the query is empty.
            RuntimeError: neither :meth:`build` nor :meth:`load` has run.
        """
        if not query.strip():
            raise QuestionError("the question is empty")
        if not self.is_built:
            raise RuntimeError("Retriever.search before build(): call build() or load() first")
        if top_k < 1 or not self.passages:
            return []
        depth = max(self.candidates, top_k)
        rankings: list[tuple[list[int], float]] = []
        dense_ids: list[int] = []
        sparse_ids: list[int] = []
        if self.dense_weight > 0:
            dense_ids = self.dense_ranking(query, depth)
            rankings.append((dense_ids, self.dense_weight))
        if self.sparse_weight > 0:
            sparse_ids = self.sparse_ranking(query, depth)
            rankings.append((sparse_ids, self.sparse_weight))
        dense_rank = {doc: i + 1 for i, doc in enumerate(dense_ids)}
        sparse_rank = {doc: i + 1 for i, doc in enumerate(sparse_ids)}
        return [
            Hit(
                passage=self.passages[doc],
                score=score,
                dense_rank=dense_rank.get(doc),
                sparse_rank=sparse_rank.get(doc),
            )
            for doc, score in rrf_fuse(rankings, rrf_k=self.rrf_k)[:top_k]
        ]

    def dense_ranking(self, query: str, k: int) -> list[int]:
        """Passage positions by cosine similarity to the query, best first (at most ``k``)."""
        if self.dense_index is None or len(self.dense_index) == 0:
            return []
        _, ids = self.dense_index.search(self.encoder.encode_query(query), k)
        return [int(i) for i in ids[0] if i >= 0]

    def sparse_ranking(self, query: str, k: int) -> list[int]:
        """Passage positions by BM25 score, best first; passages sharing no term are left out."""
        if self._bm25 is None:
            return []
        # bm25s.get_scores fails on an empty token list; out-of-vocabulary tokens are dropped
        # first, and a repeated query token counts once.
        token_ids = list(dict.fromkeys(self._bm25.get_tokens_ids(tokenize_for_search(query))))
        if not token_ids:
            return []
        scores = np.asarray(self._bm25.get_scores_from_ids(token_ids), dtype=np.float64)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        order = np.lexsort((matched, -scores[matched]))
        return [int(i) for i in matched[order]]

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the index as one directory, replacing any index already there, atomically.

        Everything is written into a temporary sibling directory and renamed into place, so a
        crash never leaves a half-written index where :meth:`load` would find it. A directory
        that holds anything but index files (and no manifest) is refused rather than deleted.

        Args:
            directory: where the index goes.
            extra: more manifest entries (``qa.indexing`` records documents and exclusions);
                they may not override the entries that describe the files.
        """
        if self.dense_index is None:
            raise RuntimeError("nothing to save: call build() first")
        return write_index_dir(
            directory,
            model_id=self.encoder.model_id,
            passages=self.passages,
            vectors=self.vectors,
            dense_index=self.dense_index,
            extra=extra,
        )

    @staticmethod
    def read_manifest(directory: str | Path) -> dict[str, Any]:
        """The manifest of a saved index (for ``/healthz`` and ``ludao index`` reports).

        Raises:
            FileNotFoundError: there is no index directory.
            IndexCorruptError: the directory has no readable manifest.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"no index at {directory}")
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(
                f"index manifest {directory / MANIFEST} is missing or unreadable; {REBUILD_HINT}"
            ) from exc
        if not isinstance(manifest, dict):
            raise IndexCorruptError(f"index manifest {directory / MANIFEST} is not an object")
        return manifest

    @classmethod
    def load(
        cls,
        directory: str | Path,
        encoder: Encoder,
        *,
        expected_corpus_hash: str | None = None,
        **kwargs: Any,
    ) -> Retriever:
        """Read and verify a saved index, then rebuild BM25 from its passages.

        Args:
            directory: what :meth:`save` wrote.
            encoder: must be the model the index was built with (same id and dimension).
            expected_corpus_hash: ``corpus_hash`` of the passages the caller expects (freshly
                chunked documents); a different saved corpus means the documents changed.
            kwargs: passed to ``Retriever(...)`` (``rrf_k``, weights, ``candidates``).

        Raises:
            FileNotFoundError: ``directory`` does not exist.
            IndexMismatchError: other model, dimension, format version or corpus.
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
        dense = FaissIndex.load(directory / DENSE)
        if len(dense) != count or dense.dimension != saved.dimension:
            raise IndexCorruptError(
                f"{directory / DENSE} holds {len(dense)} vectors of dimension {dense.dimension}, "
                f"the manifest says {count} of {saved.dimension}; {REBUILD_HINT}"
            )
        retriever = cls(encoder, saved.passages, dense_index=dense, **kwargs)
        retriever._vectors_file = (directory / VECTORS, manifest["vectors_sha256"])
        retriever.build()
        logger.info("loaded index of %d passages from %s", count, directory)
        return retriever


@dataclasses.dataclass(frozen=True)
class SavedIndex:
    """The verified manifest and passages of a saved index; its vectors are read on demand.

    What an incremental update or a document removal needs, without loading FAISS or building
    BM25. Use :meth:`read`.
    """

    directory: Path
    manifest: dict[str, Any]
    passages: list[Passage]

    @property
    def count(self) -> int:
        return len(self.passages)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @classmethod
    def read(cls, directory: str | Path, encoder: Encoder | None = None) -> SavedIndex:
        """Read the manifest and passages and check them against each other.

        Args:
            directory: what :func:`write_index_dir` wrote.
            encoder: when given, the index must have been built with this model and dimension.

        Raises:
            FileNotFoundError: ``directory`` does not exist.
            IndexMismatchError: other format version, model or dimension.
            IndexCorruptError: missing, truncated or inconsistent files.
        """
        directory = Path(directory)
        manifest = Retriever.read_manifest(directory)
        _check_manifest(manifest, directory, encoder)
        passages = _read_passages(directory / PASSAGES)
        count = manifest["passage_count"]
        if len(passages) != count:
            raise IndexCorruptError(
                f"{directory / PASSAGES} holds {len(passages)} passages, the manifest says "
                f"{count}; {REBUILD_HINT}"
            )
        if corpus_hash(passages) != manifest["corpus_hash"]:
            raise IndexCorruptError(
                f"{directory / PASSAGES} does not match the manifest's corpus hash (edited "
                f"after indexing?); {REBUILD_HINT}"
            )
        return cls(directory=directory, manifest=manifest, passages=passages)

    def vectors(self) -> np.ndarray:
        """All saved vectors, ``(count, dimension)`` float32, checked against the manifest.

        Raises:
            IndexCorruptError: ``vectors.npy`` is missing, truncated, reshaped or altered.
        """
        return read_vectors(
            self.directory / VECTORS, self.count, self.dimension, self.manifest["vectors_sha256"]
        )


def _check_manifest(manifest: dict[str, Any], directory: Path, encoder: Encoder | None) -> None:
    """Mismatch before corruption: a stale index is the common case and has the simple fix."""
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise IndexCorruptError(
            f"index manifest {directory / MANIFEST} lacks a valid 'format_version'; {REBUILD_HINT}"
        )
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {directory} has format version {version}, this "
            f"Ludao reads version {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    required = {
        "embedding_model": str,
        "dimension": int,
        "passage_count": int,
        "corpus_hash": str,
        "vectors_sha256": str,
    }
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise IndexCorruptError(
                f"index manifest {directory / MANIFEST} lacks a valid {key!r}; {REBUILD_HINT}"
            )
    if encoder is None:
        return
    if manifest["embedding_model"] != encoder.model_id:
        raise IndexMismatchError(
            f"the index at {directory} was built with embedding model "
            f"{manifest['embedding_model']!r}, but the configured model is "
            f"{encoder.model_id!r}; {REBUILD_HINT}"
        )
    if manifest["dimension"] != encoder.dimension:
        raise IndexMismatchError(
            f"the index at {directory} holds {manifest['dimension']}-dimensional vectors, but "
            f"model {encoder.model_id!r} produces {encoder.dimension}; {REBUILD_HINT}"
        )


def _check_vectors(vectors: np.ndarray, count: int, what: str) -> np.ndarray:
    """``vectors`` as C-contiguous float32 ``(count, d)``, or a ValueError naming ``what``."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or len(array) != count:
        raise ValueError(f"{what} has shape {np.shape(vectors)}, expected ({count}, dimension)")
    return array


def dense_index_from(vectors: np.ndarray, dimension: int) -> FaissIndex:
    """The FAISS index for ``vectors``, of the kind ``FaissIndex`` picks for their number."""
    if len(vectors) == 0:  # nothing to train a structure on: an empty exact index
        return FaissIndex(dimension)
    index = FaissIndex.from_vectors(vectors, kind="auto")
    if len(index) != len(vectors) or index.dimension != dimension:
        raise ValueError(
            f"{len(vectors)} vectors of dimension {vectors.shape[1]} do not fit a "
            f"{dimension}-dimensional model"
        )
    return index


def vectors_digest(vectors: np.ndarray) -> str:
    """SHA-256 of the raw float32 rows: the manifest's check on ``vectors.npy``."""
    return hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).data).hexdigest()


def check_vectors_header(path: Path, count: int, dimension: int) -> None:
    """Cheap check of ``vectors.npy``: float32 ``(count, dimension)`` by its header and size.

    Raises:
        IndexCorruptError: missing, not a NumPy file, or another shape or type.
    """
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            data_bytes = os.fstat(fh.fileno()).st_size - fh.tell()
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} is missing or unreadable; {REBUILD_HINT}") from exc
    if shape != (count, dimension) or dtype != np.float32 or fortran:
        raise IndexCorruptError(
            f"{path} holds {dtype} vectors of shape {shape}, the manifest says float32 "
            f"({count}, {dimension}); {REBUILD_HINT}"
        )
    if data_bytes != count * dimension * 4:
        raise IndexCorruptError(
            f"{path} is truncated ({data_bytes} bytes of vectors, expected "
            f"{count * dimension * 4}); {REBUILD_HINT}"
        )


def read_vectors(path: Path, count: int, dimension: int, digest: str | None) -> np.ndarray:
    """Read ``vectors.npy`` whole and verify its shape and (if given) its SHA-256.

    Raises:
        IndexCorruptError: the file is missing, truncated, of another shape, or altered.
    """
    check_vectors_header(path, count, dimension)
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptError(f"{path} is truncated or unreadable; {REBUILD_HINT}") from exc
    if digest is not None and vectors_digest(vectors) != digest:
        raise IndexCorruptError(
            f"{path} does not match the manifest's checksum (altered after indexing?); "
            f"{REBUILD_HINT}"
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def write_index_dir(
    directory: str | Path,
    *,
    model_id: str,
    passages: Iterable[Passage],
    vectors: np.ndarray,
    dense_index: FaissIndex,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a complete index directory and put it in place of ``directory`` atomically.

    Shared by :meth:`Retriever.save` and by removals that edit a saved index without a model.
    """
    passages = tuple(passages)
    vectors = _check_vectors(vectors, len(passages), "vectors")
    if len(dense_index) != len(passages):
        raise ValueError(f"dense index holds {len(dense_index)} rows for {len(passages)} passages")
    clash = _RESERVED_KEYS & set(extra or {})
    if clash:
        raise ValueError(f"extra manifest entries may not override {sorted(clash)}")
    directory = Path(directory)
    if directory.exists() and not _is_replaceable(directory):
        raise FileExistsError(f"{directory} exists and is not a Ludao index; not replacing it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": model_id,
        "dimension": dense_index.dimension,
        "index_kind": dense_index.kind,
        "passage_count": len(passages),
        "corpus_hash": corpus_hash(passages),
        "vectors_sha256": vectors_digest(vectors),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        _write_files(work, passages, vectors, dense_index, manifest)
        _replace_dir(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("saved index of %d passages to %s", len(passages), directory)
    return directory


def _write_files(
    work: Path,
    passages: tuple[Passage, ...],
    vectors: np.ndarray,
    dense_index: FaissIndex,
    manifest: dict[str, Any],
) -> None:
    """The four files, each fsync'ed; the manifest last, as the mark of a complete directory."""
    with (work / PASSAGES).open("w", encoding="utf-8") as fh:
        for passage in passages:
            fh.write(json.dumps(dataclasses.asdict(passage), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    with (work / VECTORS).open("wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    dense_index.save(work / DENSE)
    write_manifest(work, manifest)


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` in ``directory`` atomically (temp file, fsync, rename).

    Also used on its own to update the document records of an index whose passages did not
    change, without rewriting the other files.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def _read_passages(path: Path) -> list[Passage]:
    passages: list[Passage] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    passages.append(
                        Passage(**{k: v for k, v in record.items() if k in _PASSAGE_FIELDS})
                    )
                except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                    raise IndexCorruptError(
                        f"{path} line {number} is not a valid passage; {REBUILD_HINT}"
                    ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is missing or unreadable; {REBUILD_HINT}") from exc
    return passages


def _is_replaceable(directory: Path) -> bool:
    """Whether ``save`` may replace ``directory``: an index (even a damaged one), or empty."""
    if not directory.is_dir():
        return False
    if (directory / MANIFEST).is_file():
        return True
    return all(p.name in INDEX_FILES or p.name.startswith(".") for p in directory.iterdir())


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is moved aside first, then removed.

    POSIX cannot rename a directory over a non-empty one, so there is a moment when ``target``
    does not exist; a crash then leaves the old index beside it as ``.<name>.old-*`` and no
    half-written one at ``target``.
    """
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old / target.name, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
