"""Hybrid retrieval: dense vectors and BM25, fused by weighted reciprocal rank.

Dense retrieval finds paraphrases (报销 ~ 费用返还) but is vague about exact figures and names;
BM25 over jieba tokens nails 2024年 or 信息中心 but knows no synonyms. Reciprocal-rank fusion
(Cormack et al., 2009) needs no score calibration between the two: each side contributes
``weight / (rrf_k + rank)`` for the passages it ranks in its top ``candidates``.

An index is saved as one directory (manifest, passages, FAISS file) and verified on load, so a
question is never answered from an index built with another model or another set of documents.
BM25 is not saved: rebuilding it from the passages takes well under a second.
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
from collections.abc import Iterable
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

FORMAT_VERSION = 1
"""Version of the saved directory layout; bump it when the layout or tokenisation changes."""
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
DENSE = "dense.faiss"
REBUILD_HINT = "rebuild it with `ludao index --rebuild`"
_PASSAGE_FIELDS = {f.name for f in dataclasses.fields(Passage)}


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
        dense_index: vectors already computed for ``passages`` (``load`` passes the saved ones).
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
        self.encoder = encoder
        self.passages: tuple[Passage, ...] = tuple(passages)
        self.dense_index = dense_index
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
        logger.info("embedding %d passages with %s", len(self.passages), self.encoder.model_id)
        vectors = self.encoder.encode_passages(
            [p.text for p in self.passages], show_progress=show_progress
        )
        index = FaissIndex(self.encoder.dimension)
        index.add(vectors)
        if len(index) != len(self.passages):
            raise ValueError(
                f"encoder returned {len(index)} vectors for {len(self.passages)} passages"
            )
        return index

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

    def save(self, directory: str | Path) -> Path:
        """Write the index as one directory, replacing any index already there, atomically.

        Everything is written into a temporary sibling directory and renamed into place, so a
        crash never leaves a half-written index where :meth:`load` would find it. A directory
        that holds anything but index files (and no manifest) is refused rather than deleted.
        """
        if self.dense_index is None:
            raise RuntimeError("nothing to save: call build() first")
        directory = Path(directory)
        if directory.exists() and not _is_replaceable(directory):
            raise FileExistsError(f"{directory} exists and is not a Ludao index; not replacing it")
        directory.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            self._write(work)
            _replace_dir(work, directory)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        logger.info("saved index of %d passages to %s", len(self.passages), directory)
        return directory

    def _write(self, work: Path) -> None:
        assert self.dense_index is not None
        with (work / PASSAGES).open("w", encoding="utf-8") as fh:
            for passage in self.passages:
                fh.write(json.dumps(dataclasses.asdict(passage), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.dense_index.save(work / DENSE)
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.encoder.model_id,
            "dimension": self.dense_index.dimension,
            "index_kind": self.dense_index.kind,
            "passage_count": len(self.passages),
            "corpus_hash": self.corpus_hash,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with (work / MANIFEST).open("w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(work)

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
        directory = Path(directory)
        manifest = cls.read_manifest(directory)
        _check_manifest(manifest, directory, encoder)
        passages = _read_passages(directory / PASSAGES)
        count = manifest["passage_count"]
        if len(passages) != count:
            raise IndexCorruptError(
                f"{directory / PASSAGES} holds {len(passages)} passages, the manifest says "
                f"{count}; {REBUILD_HINT}"
            )
        dense = FaissIndex.load(directory / DENSE)
        if len(dense) != count or dense.dimension != manifest["dimension"]:
            raise IndexCorruptError(
                f"{directory / DENSE} holds {len(dense)} vectors of dimension {dense.dimension}, "
                f"the manifest says {count} of {manifest['dimension']}; {REBUILD_HINT}"
            )
        actual = corpus_hash(passages)
        if actual != manifest["corpus_hash"]:
            raise IndexCorruptError(
                f"{directory / PASSAGES} does not match the manifest's corpus hash (edited "
                f"after indexing?); {REBUILD_HINT}"
            )
        if expected_corpus_hash is not None and actual != expected_corpus_hash:
            raise IndexMismatchError(
                f"the index at {directory} was built from other documents than the current "
                f"corpus; {REBUILD_HINT}"
            )
        retriever = cls(encoder, passages, dense_index=dense, **kwargs)
        retriever.build()
        logger.info("loaded index of %d passages from %s", count, directory)
        return retriever


def _check_manifest(manifest: dict[str, Any], directory: Path, encoder: Encoder) -> None:
    """Mismatch before corruption: a stale index is the common case and has the simple fix."""
    required = {
        "format_version": int,
        "embedding_model": str,
        "dimension": int,
        "passage_count": int,
        "corpus_hash": str,
    }
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise IndexCorruptError(
                f"index manifest {directory / MANIFEST} lacks a valid {key!r}; {REBUILD_HINT}"
            )
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {directory} has format version {manifest['format_version']}, this "
            f"Ludao reads version {FORMAT_VERSION}; {REBUILD_HINT}"
        )
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
    own = {MANIFEST, PASSAGES, DENSE}
    return all(p.name in own or p.name.startswith(".") for p in directory.iterdir())


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
