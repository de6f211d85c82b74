"""Searching a Milvus store: dense and BM25 sparse requests, fused by RRF inside the engine.

With equal dense and sparse weights (the default) one ``hybrid_search`` call sends both
requests and Milvus fuses them with ``RRFRanker(rrf_k)``: the same reciprocal-rank fusion as
``qa.retrieval.rrf_fuse``, computed where the data is. Unequal weights have no engine-side
equivalent, so then the two rankings come back separately and are fused here with the same
weighted formula the FAISS store uses. A weight of 0 sends one request only. Access filters
(``groups``) go into each request's filter expression, so the engine never ranks a passage the
caller may not see.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from qa.errors import QuestionError
from qa.retrieval import rrf_fuse
from qa.schema import Hit, Passage
from qa.search_terms import tokenize_for_search

from .base import StoreUnavailableError, group_filter
from .bm25_weights import query_vector, term_id
from .milvus_access import StoreVisibility
from .milvus_client import PASSAGE_FIELDS, guarded

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)


def passage_from_row(row: dict[str, Any]) -> Passage:
    """The :class:`Passage` a stored row describes (``page`` -1 means none)."""
    page = row.get("page", -1)
    return Passage(
        id=row["id"],
        doc_id=row["doc_id"],
        title=row["title"],
        text=row["text"],
        start=int(row["start"]),
        end=int(row["end"]),
        orig_start=int(row["orig_start"]),
        orig_end=int(row["orig_end"]),
        page=None if page is None or page < 0 else int(page),
    )


class MilvusSearcher:
    """Searches one Milvus collection; the pipeline's ``retriever`` when the store is Milvus.

    Args:
        client: an open ``MilvusClient``.
        uri: for messages.
        collection: the passage collection (its ``_meta`` companion holds the term statistics).
        encoder: embeds queries; must be the model the store was filled with.
        passages: the passage count when opened (``len()``; ``/healthz`` shows it).
        visibility: each document's groups and passage count when opened (``scope`` and
            ``visible_counts``: what the pipeline filters by and ``/healthz`` counts).
    """

    def __init__(
        self,
        client: MilvusClient,
        *,
        uri: str,
        collection: str,
        encoder: Encoder,
        passages: int,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        sparse_weight: float = 1.0,
        candidates: int = 50,
        visibility: StoreVisibility | None = None,
    ) -> None:
        if dense_weight < 0 or sparse_weight < 0 or dense_weight == sparse_weight == 0:
            raise ValueError("retrieval weights must be non-negative and not both 0")
        self.client = client
        self.uri = uri
        self.collection = collection
        self.encoder = encoder
        self.count = passages
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.sparse_weight = sparse_weight
        self.candidates = candidates
        self.visibility = visibility if visibility is not None else StoreVisibility({})

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"MilvusSearcher({self.uri}#{self.collection}, {self.count} passages)"

    def scope(self, groups: Collection[str] | None) -> dict[str, frozenset[str]]:
        """``search`` options for a user of ``groups`` (``Pipeline.ask`` passes them on).

        Empty when nothing needs filtering (no restricted document, or an unrestricted caller),
        so the engine query then carries no filter at all.
        """
        scope = self.visibility.scope(groups)
        return {} if scope is None else {"groups": scope}

    def visible_counts(self, groups: Collection[str] | None) -> dict[str, int]:
        """Documents and passages a user of ``groups`` may read (``/healthz``)."""
        return self.visibility.counts(groups)

    def health(self) -> str | None:
        """``None`` when the store answers, else why not (for ``/healthz``)."""
        try:
            guarded(self.uri, lambda: self.client.get_collection_stats(self.collection))
        except Exception as exc:  # StoreUnavailableError, with its reason
            return str(exc)
        return None

    def search(
        self, query: str, top_k: int = 5, *, groups: Collection[str] | None = None
    ) -> list[Hit]:
        """The ``top_k`` passages for ``query``, best first (``groups``: the caller's groups).

        Raises:
            QuestionError: the query is empty.
            StoreUnavailableError: Milvus does not answer.
        """
        if not query.strip():
            raise QuestionError("the question is empty")
        if top_k < 1 or self.count == 0:
            return []
        where = group_filter(groups) or ""
        depth = max(self.candidates, top_k)
        try:
            return guarded(self.uri, lambda: self._search(query, top_k, depth, where))
        except StoreUnavailableError as exc:
            if "load" not in str(exc):
                raise
            # A restarted server comes back with its collections released: load, then retry.
            guarded(self.uri, self._load)
            return guarded(self.uri, lambda: self._search(query, top_k, depth, where))

    def _load(self) -> None:
        for name in (self.collection, f"{self.collection}_meta"):
            self.client.load_collection(name)

    def _search(self, query: str, top_k: int, depth: int, where: str) -> list[Hit]:
        from pymilvus import AnnSearchRequest, RRFRanker

        requests: list[tuple[Any, float]] = []
        if self.dense_weight > 0:
            dense = [self.encoder.encode_query(query).astype("float32").tolist()]
            requests.append(
                (AnnSearchRequest(dense, "dense", {}, limit=depth, expr=where), self.dense_weight)
            )
        if self.sparse_weight > 0:
            sparse = self._query_terms(query)
            if sparse:
                request = AnnSearchRequest([sparse], "sparse", {}, limit=depth, expr=where)
                requests.append((request, self.sparse_weight))
        if not requests:
            return []
        fields = list(PASSAGE_FIELDS)
        if len(requests) == 1 or len({w for _, w in requests}) == 1:
            if len(requests) == 1:
                request = requests[0][0]
                result = self.client.search(
                    self.collection,
                    data=request.data,
                    anns_field=request.anns_field,
                    limit=top_k,
                    filter=where,
                    output_fields=fields,
                )
            else:
                result = self.client.hybrid_search(
                    self.collection,
                    [r for r, _ in requests],
                    RRFRanker(self.rrf_k),
                    limit=top_k,
                    output_fields=fields,
                )
            return [Hit(passage_from_row(h["entity"]), float(h["distance"])) for h in result[0]]
        return self._fused_here(requests, top_k, fields)

    def _fused_here(self, requests: list[tuple[Any, float]], top_k: int, fields: list[str]):
        """Unequal weights: both rankings from the engine, weighted RRF as the FAISS store."""
        rows: dict[str, dict[str, Any]] = {}
        rankings: list[tuple[list[int], float]] = []
        ids: dict[str, int] = {}
        ranks: list[dict[int, int]] = []
        for request, weight in requests:
            result = self.client.search(
                self.collection,
                data=request.data,
                anns_field=request.anns_field,
                limit=request.limit,
                filter=request.expr or "",
                output_fields=fields,
            )
            order = []
            for hit in result[0]:
                key = ids.setdefault(hit["id"], len(ids))
                rows[hit["id"]] = hit["entity"]
                order.append(key)
            rankings.append((order, weight))
            ranks.append({doc: i + 1 for i, doc in enumerate(order)})
        by_key = {v: k for k, v in ids.items()}
        hits = []
        for key, score in rrf_fuse(rankings, rrf_k=self.rrf_k)[:top_k]:
            dense_rank = ranks[0].get(key) if self.dense_weight > 0 else None
            sparse_rank = ranks[-1].get(key) if self.sparse_weight > 0 else None
            passage = passage_from_row(rows[by_key[key]])
            hits.append(Hit(passage, score, dense_rank=dense_rank, sparse_rank=sparse_rank))
        return hits

    def _query_terms(self, query: str) -> dict[int, float]:
        """The BM25 query vector: IDF from the store's current statistics (one ``get``)."""
        terms = sorted({term_id(t) for t in tokenize_for_search(query)})
        if not terms:
            return {}
        keys = ["stats", *(f"term:{t}" for t in terms)]
        rows = self.client.get(f"{self.collection}_meta", ids=keys, output_fields=["value", "df"])
        df: dict[int, int] = {}
        passages = 0
        for row in rows:
            if row["key"] == "stats":
                import json

                passages = int(json.loads(row["value"]).get("passages", 0))
            else:
                df[int(row["key"].split(":", 1)[1])] = int(row["df"])
        return query_vector(query, df, passages)
