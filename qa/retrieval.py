"""Hybrid retrieval: dense vectors and BM25, fused by weighted reciprocal rank.

Dense retrieval finds paraphrases (报销 ~ 费用返还) but is vague about exact figures and names;
BM25 over jieba tokens nails 2024年 or 信息中心 but knows no synonyms. Reciprocal-rank fusion
(Cormack et al., 2009) needs no score calibration between the two: each side contributes
``weight / (rrf_k + rank)`` for the passages it ranks in its top ``candidates``.

Search only: the saved index folder (manifest, passages, FAISS file, raw vectors) is
``qa.index.store``, which builds a :class:`Retriever` from it; nothing here reads or writes files.
BM25 is built, saved and memory-mapped by ``qa.sparse_index``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import numpy as np

from embeddings.index import FaissIndex
from qa.errors import QuestionError
from qa.schema import Hit, Passage
from qa.search_terms import tokenize_for_search
from qa.sparse_index import build_bm25

if TYPE_CHECKING:
    import bm25s

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)


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

    ``__init__`` only validates; :meth:`build` embeds the passages (unless a dense index is
    given) and builds BM25. Searching is thread-safe once built. Saving and loading belong to
    the saved-folder format (``qa.index.store``): this class knows nothing about files.

    Args:
        encoder: the embedding model; its ``model_id`` and ``dimension`` are recorded on save.
        passages: the corpus, in index order (row ``i`` of the dense index is ``passages[i]``).
        dense_index: a FAISS index already built for ``passages`` (a loaded index passes the
            saved one).
        vectors: the ``(len(passages), dimension)`` float32 rows ``dense_index`` was built from;
            saving writes them, and :meth:`build` builds ``dense_index`` from them when only they
            are given.
        vectors_loader: returns those rows on first use of :attr:`vectors`, instead of
            ``vectors``; a loaded index reads its vectors file only when an update needs it.
        sparse_index: a BM25 index already built for ``passages`` (a loaded index passes the
            saved one); otherwise :meth:`build` builds it.
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
        vectors_loader: Callable[[], np.ndarray] | None = None,
        sparse_index: bm25s.BM25 | None = None,
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
            vectors = check_vectors(vectors, len(passages), "vectors")
        self.encoder = encoder
        self.passages: tuple[Passage, ...] = tuple(passages)
        self.dense_index = dense_index
        self._vectors = vectors
        self._vectors_loader = vectors_loader
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.sparse_weight = sparse_weight
        self.candidates = candidates
        if sparse_index is not None and sparse_index.scores["num_docs"] != len(passages):
            raise ValueError(
                f"BM25 index covers {sparse_index.scores['num_docs']} passages, not {len(passages)}"
            )
        self._bm25: bm25s.BM25 | None = sparse_index
        self._sparse_built = sparse_index is not None
        self._sparse_given = sparse_index is not None
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

    # -- building ---------------------------------------------------------------------------

    def build(self, show_progress: bool | None = None) -> Retriever:
        """Embed the passages (unless a dense index was given) and build BM25; returns self."""
        with self._build_lock:
            if self.dense_index is None:
                self.dense_index = self._embed(show_progress)
            if not self._sparse_built:
                self._bm25 = build_bm25([p.text for p in self.passages])
                self._sparse_built = True
        return self

    def _embed(self, show_progress: bool | None) -> FaissIndex:
        if self._vectors is None:
            logger.info("embedding %d passages with %s", len(self.passages), self.encoder.model_id)
            vectors = self.encoder.encode_passages(
                [p.text for p in self.passages], show_progress=show_progress
            )
            self._vectors = check_vectors(vectors, len(self.passages), "encoder output")
        return dense_index_from(self._vectors, self.encoder.dimension)

    @property
    def vectors(self) -> np.ndarray:
        """The passage vectors, row ``i`` for ``passages[i]`` (from ``vectors_loader`` if given).

        Raises:
            RuntimeError: nothing was embedded yet.
            IndexCorruptError: a loaded index's vectors file was damaged after loading.
        """
        if self._vectors is None:
            if self._vectors_loader is None:
                raise RuntimeError(
                    "no vectors: call build() first (a retriever given only a dense_index "
                    "needs vectors= as well to be saved)"
                )
            vectors = self._vectors_loader()
            self._vectors = check_vectors(vectors, len(self.passages), "loaded vectors")
        return self._vectors

    @property
    def sparse_index(self) -> bm25s.BM25 | None:
        """The BM25 index once built (None before, or when no passage has a search token)."""
        return self._bm25

    @property
    def sparse_index_built_here(self) -> bool:
        """Whether :meth:`build` made BM25 itself rather than being given a saved one (so an
        index folder that lacks a usable one can keep it for the next start)."""
        return self._sparse_built and not self._sparse_given

    # -- searching --------------------------------------------------------------------------

    def search(
        self,
        query: str,
        top_k: int = 5,
        *,
        allowed: AbstractSet[int] | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``top_k`` passages for ``query``, best first, with fused scores and both ranks.

        ``allowed`` (passage positions, from ``qa.access.DocumentAccess.allowed_rows``) limits
        the search to those rows *before* ranking: the others are never scored, so they cannot
        be read, cited or counted. ``None`` searches everything.
        ``query_vector``: the query's embedding when the caller has it (:meth:`search_many`).

        Raises:
            QuestionError: the query is empty.
            RuntimeError: :meth:`build` has not run.
        """
        if not query.strip():
            raise QuestionError("the question is empty")
        if not self.is_built:
            raise RuntimeError("Retriever.search before build(): call build() first")
        if top_k < 1 or not self.passages or (allowed is not None and not allowed):
            return []
        depth = max(self.candidates, top_k)
        rankings: list[tuple[list[int], float]] = []
        dense_ids: list[int] = []
        sparse_ids: list[int] = []
        if self.dense_weight > 0:
            dense_ids = self.dense_ranking(query, depth, allowed=allowed, vector=query_vector)
            rankings.append((dense_ids, self.dense_weight))
        if self.sparse_weight > 0:
            sparse_ids = self.sparse_ranking(query, depth, allowed=allowed)
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

    def search_many(
        self, queries: Sequence[tuple[str, int, AbstractSet[int] | None]]
    ) -> list[list[Hit]]:
        """:meth:`search` for each ``(query, top_k, allowed)``, the query vectors computed in
        one call: the server's micro-batches (``qa.batching``) embed their questions together."""
        vectors: np.ndarray | None = None
        encode_many = getattr(self.encoder, "encode_queries", None)
        if self.dense_weight > 0 and self.dense_index is not None and callable(encode_many):
            vectors = encode_many([query for query, _, _ in queries])
        return [
            self.search(
                query,
                top_k,
                allowed=allowed,
                query_vector=None if vectors is None else vectors[i],
            )
            for i, (query, top_k, allowed) in enumerate(queries)
        ]

    def dense_ranking(
        self,
        query: str,
        k: int,
        *,
        allowed: AbstractSet[int] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[int]:
        """Passage positions by cosine similarity to the query, best first (at most ``k``).

        With ``allowed``, only those rows are scored (exactly, from the saved vectors).
        ``vector``: the query's embedding, when already computed.
        """
        if self.dense_index is None or len(self.dense_index) == 0:
            return []
        if vector is None:
            vector = self.encoder.encode_query(query)
        if allowed is not None:
            return allowed_dense_ranking(self.vectors, vector, allowed, k)
        _, ids = self.dense_index.search(vector, k)
        return [int(i) for i in ids[0] if i >= 0]

    def sparse_ranking(
        self, query: str, k: int, *, allowed: AbstractSet[int] | None = None
    ) -> list[int]:
        """Passage positions by BM25 score, best first; passages sharing no term are left out.

        With ``allowed``, the other rows' scores are zeroed before anything is ranked.
        """
        if self._bm25 is None:
            return []
        # bm25s.get_scores fails on an empty token list; out-of-vocabulary tokens are dropped
        # first, and a repeated query token counts once.
        token_ids = list(dict.fromkeys(self._bm25.get_tokens_ids(tokenize_for_search(query))))
        if not token_ids:
            return []
        scores = np.asarray(self._bm25.get_scores_from_ids(token_ids), dtype=np.float64)
        if allowed is not None:
            mask = np.zeros(len(scores), dtype=bool)
            mask[np.fromiter(allowed, dtype=np.int64, count=len(allowed))] = True
            scores = np.where(mask, scores, 0.0)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        order = np.lexsort((matched, -scores[matched]))
        return [int(i) for i in matched[order]]


def allowed_dense_ranking(
    vectors: np.ndarray, query: np.ndarray, allowed: AbstractSet[int], k: int
) -> list[int]:
    """The ``k`` best of the ``allowed`` rows by inner product with ``query``, best first.

    Exact and independent of the index structure, so a filtered search never needs the
    approximate index to return enough allowed rows; ties go to the smaller position.
    """
    rows = np.fromiter(sorted(allowed), dtype=np.int64, count=len(allowed))
    scores = vectors[rows] @ np.asarray(query, dtype=np.float32).reshape(-1)
    order = np.lexsort((rows, -scores))[:k]
    return [int(r) for r in rows[order]]


def check_vectors(vectors: np.ndarray, count: int, what: str) -> np.ndarray:
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
