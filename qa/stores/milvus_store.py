"""A Milvus collection as the store: filled by ``ludao index --store milvus``, read by any server.

``sync`` updates incrementally, as the FAISS folder does: a document whose record (file hash,
size, passage ids) is unchanged is not touched; a changed one has its passages replaced, reusing
the stored dense vector of every passage whose text (content hash) is already in the store; a
document that disappeared from the corpus is deleted. A sync only owns the documents of its own
corpus: those it read now, and stored ones whose source file lies under one of its ``roots``, so
servers with different upload folders never delete each other's documents. The term statistics
of ``qa.stores.bm25_weights`` move with every added and deleted passage.

Writers are meant to run one at a time (``ludao index`` or one server's reload): two syncs that
apply the same change at the same moment would count its terms twice; ``--rebuild`` recounts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.corpus import Corpus, DocumentRecord
from qa.errors import IndexMismatchError, LudaoError
from qa.index import DocumentListing, RemovedDocument
from qa.index.admin import now, without_removed
from qa.index.store import text_key
from qa.schema import Passage

from .base import StoreUpdate, stored_groups
from .bm25_weights import PassageTerms, TermStats, needs_rewrite
from .milvus_access import EVERYONE_ONLY, GroupsFor, StoreVisibility, record_groups, relabel
from .milvus_client import (
    PASSAGE_FIELDS,
    batches,
    connect,
    create_collections,
    guarded,
    in_filter,
    iterate,
    meta_row,
    quote,
)
from .milvus_search import MilvusSearcher

if TYPE_CHECKING:
    import numpy as np

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)


def passages_digest(passages: Sequence[Passage]) -> str:
    """Identity of a document's chunking: its passage ids (which hash their texts), in order."""
    return hashlib.sha256("\n".join(p.id for p in passages).encode()).hexdigest()


class MilvusStore:
    """The store at ``uri`` (``./ludao.db``, ``http://host:19530``), collection ``collection``."""

    name = "milvus"

    def __init__(self, uri: str, collection: str, *, token: str = "") -> None:
        self.uri = uri
        self.collection = collection
        self.meta = f"{collection}_meta"
        self.client = connect(uri, token)

    @property
    def location(self) -> str:
        return f"{self.uri}#{self.collection}"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded(self.uri, lambda: fn(*args, **kwargs))

    # -- reading the meta rows ---------------------------------------------------------------

    def _exists(self) -> bool:
        return bool(self._call(self.client.has_collection, self.meta))

    def _stats(self) -> dict[str, Any]:
        rows = self._call(self.client.get, self.meta, ids=["stats"], output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else {}

    def _entries(self, prefix: str) -> list[dict[str, Any]]:
        rows = self._call(
            lambda: list(iterate(self.client, self.meta, f'key like "{prefix}:%"', ["value"]))
        )
        return [json.loads(r["value"]) for r in rows]

    def _records(self) -> dict[str, dict[str, Any]]:
        return {e["id"]: e for e in self._entries("doc")}

    def _excluded(self) -> list[RemovedDocument]:
        return [RemovedDocument.from_entry(e) for e in self._entries("excluded")]

    def _term_stats(self, stats: dict[str, Any], terms: set[int]) -> TermStats:
        keys = [f"term:{t}" for t in terms]
        df: dict[int, int] = {}
        for chunk in batches(keys):
            for row in self._call(
                self.client.get, self.meta, ids=list(chunk), output_fields=["df"]
            ):
                df[int(row["key"].split(":", 1)[1])] = int(row["df"])
        return TermStats(stats.get("passages", 0), stats.get("total_length", 0), df)

    # -- the update ---------------------------------------------------------------------------

    def sync(
        self,
        corpus: Corpus,
        encoder: Encoder,
        *,
        rebuild: bool = False,
        roots: Sequence[str | Path] = (),
        groups_for: GroupsFor | None = None,
        **options: Any,
    ) -> StoreUpdate:
        """Bring the collection up to date with ``corpus`` and return a searcher over it.

        ``groups_for`` labels this corpus's documents with access groups from their source
        (``qa.stores.milvus_access``); without it, stored labels are kept (new: everyone).

        Raises:
            IndexMismatchError: the collection was filled with another embedding model.
            StoreUnavailableError: Milvus does not answer.
        """
        if rebuild and self._exists():
            for name in (self.collection, self.meta):
                self._call(self.client.drop_collection, name)
        self._call(create_collections, self.client, self.collection, encoder.dimension)
        stats = self._stats()
        model = stats.get("embedding_model")
        if model not in (None, encoder.model_id) or stats.get("dimension") not in (
            None,
            encoder.dimension,
        ):
            raise IndexMismatchError(
                f"the Milvus collection {self.location} holds vectors of {model!r} "
                f"({stats.get('dimension')}-d), not of {encoder.model_id!r}; fill another "
                "collection (LUDAO_MILVUS_COLLECTION) or rebuild it with "
                "`ludao index --store milvus --rebuild`"
            )
        excluded = self._excluded()
        corpus, skipped = without_removed(corpus, excluded)
        stored = self._records()
        by_doc: dict[str, list[Passage]] = {}
        for passage in corpus.passages:
            by_doc.setdefault(passage.doc_id, []).append(passage)
        fresh = {r.id: r for r in corpus.records}
        for doc_id in by_doc.keys() - fresh.keys():  # passages without a file record
            fresh[doc_id] = DocumentRecord(doc_id, "", None, None, None, len(by_doc[doc_id]))
        changed = [d for d in fresh if not _same(stored.get(d), fresh[d], by_doc.get(d, []))]
        owned = [str(Path(r).resolve()) for r in roots]
        gone = [
            d
            for d, entry in stored.items()
            if d not in fresh and _under(entry.get("source") or "", owned)
        ]
        if groups_for is None:
            labels = {d: record_groups(stored.get(d)) for d in fresh}
        else:
            labels = {d: frozenset(groups_for(fresh[d].source)) or EVERYONE_ONLY for d in fresh}
        relabelled = {
            d: labels[d]
            for d in fresh
            if d not in changed and d in stored and record_groups(stored[d]) != labels[d]
        }
        old = self._rows(changed + gone, ["id", "text", "content_hash", "dense"])
        new_passages = [p for d in changed for p in by_doc.get(d, [])]
        terms_out = [PassageTerms.of(r["text"]) for r in old]
        terms_in = [PassageTerms.of(p.text) for p in new_passages]
        touched = {t for item in terms_out + terms_in for t in item.counts}
        counts = self._term_stats(stats, touched)
        weights_avglen = float(stats.get("weights_avglen", 0.0))
        counts.add(terms_out, -1)
        counts.add(terms_in, 1)
        # Rows written before hold weights for ``weights_avglen``; a first fill has none to redo.
        rewrite = weights_avglen > 0 and needs_rewrite(weights_avglen, counts.avglen)
        if rewrite or not weights_avglen:
            weights_avglen = counts.avglen
        vectors, reused = self._vectors(new_passages, old, encoder)
        if changed or gone:
            self._call(
                self.client.delete, self.collection, filter=in_filter("doc_id", changed + gone)
            )
        records = {**{d: stored[d] for d in stored if d not in gone}}
        stamp = now()
        for d in changed:
            entry = asdict(fresh[d]) | {"indexed": stamp, "passages_sha": ""}
            entry["passages_sha"] = passages_digest(by_doc.get(d, []))
            records[d] = entry | {"groups": sorted(labels[d])}
        for d in relabelled:
            records[d] = stored[d] | {"groups": sorted(labels[d])}
        rows = [
            _row(p, vectors[i], terms_in[i].weights(weights_avglen), fresh[p.doc_id].source)
            for i, p in enumerate(new_passages)
        ]
        for row in rows:
            row["groups"] = stored_groups(labels[row["doc_id"]])
        for chunk in batches(rows):
            self._call(self.client.insert, self.collection, list(chunk))
        if relabelled:  # before a rewrite, which reads the rows back with their labels
            self._call(relabel, self.client, self.collection, relabelled, weights_avglen)
        if rewrite:
            counts = self._rewrite_sparse(weights_avglen)
        written = changed + list(relabelled)
        self._save_meta(counts, touched, records, written, gone, encoder, weights_avglen)
        if written or gone:  # seal what was written: growing segments are searched unindexed
            for name in (self.collection, self.meta):
                self._call(self.client.flush, name)
        mode = "built" if not stored else ("updated" if written or gone else "unchanged")
        logger.info(
            "Milvus %s %s: %d documents changed, %d removed, %d passages embedded",
            self.location,
            mode,
            len(changed),
            len(gone),
            len(new_passages) - reused,
        )
        searcher = MilvusSearcher(
            self.client,
            uri=self.uri,
            collection=self.collection,
            encoder=encoder,
            passages=counts.passages,
            visibility=StoreVisibility.of(records),
            **options,
        )
        return StoreUpdate(
            searcher=searcher,
            location=self.location,
            mode=mode,
            reused=counts.passages - (len(new_passages) - reused),
            embedded=len(new_passages) - reused,
            removed=len(old) - sum(1 for r in old if r["id"] in {p.id for p in new_passages}),
            documents=len(records),
            passages=counts.passages,
            excluded=skipped,
            reason="--rebuild" if rebuild else None,
        )

    def _rows(self, doc_ids: list[str], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in batches(doc_ids, 100):
            where = in_filter("doc_id", list(chunk))
            rows.extend(
                self._call(lambda w=where: list(iterate(self.client, self.collection, w, fields)))
            )
        return rows

    def _vectors(
        self, passages: list[Passage], old: list[dict[str, Any]], encoder: Encoder
    ) -> tuple[np.ndarray, int]:
        """Dense vectors for ``passages``: stored ones reused by content hash, the rest embedded."""
        import numpy as np

        known = {r["content_hash"]: r["dense"] for r in old}
        keys = [text_key(p.text) for p in passages]
        wanted = [k for k in dict.fromkeys(keys) if k not in known]
        for chunk in batches(wanted, 100):  # texts moved from another document
            where = in_filter("content_hash", list(chunk))
            for row in self._call(
                lambda w=where: list(
                    iterate(self.client, self.collection, w, ["content_hash", "dense"])
                )
            ):
                known[row["content_hash"]] = row["dense"]
        missing = [k for k in dict.fromkeys(keys) if k not in known]
        texts = {k: p.text for k, p in zip(keys, passages, strict=True)}
        if missing:
            fresh = np.asarray(encoder.encode_passages([texts[k] for k in missing]), np.float32)
            known.update(zip(missing, fresh, strict=True))
        vectors = np.zeros((len(passages), encoder.dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            vectors[i] = np.asarray(known[key], dtype=np.float32)
        return vectors, len(passages) - len(missing)

    def _rewrite_sparse(self, avglen: float) -> TermStats:
        """Every passage's sparse weights for a new average length; recounts the statistics."""
        logger.info(
            "Milvus %s: rewriting sparse weights (average length %.1f)", self.location, avglen
        )
        counts = TermStats()
        batch: list[dict[str, Any]] = []
        fields = [*PASSAGE_FIELDS, "dense"]
        for row in self._call(
            lambda: list(iterate(self.client, self.collection, 'id != ""', fields))
        ):
            terms = PassageTerms.of(row["text"])
            counts.add([terms])
            batch.append({**row, "sparse": terms.weights(avglen)})
            if len(batch) >= 500:
                self._call(self.client.upsert, self.collection, batch)
                batch = []
        if batch:
            self._call(self.client.upsert, self.collection, batch)
        self._call(self.client.delete, self.meta, filter='key like "term:%"')
        return counts

    def _save_meta(
        self,
        counts: TermStats,
        touched: set[int],
        records: dict[str, dict[str, Any]],
        changed: list[str],
        gone: list[str],
        encoder: Encoder,
        avglen: float,
    ) -> None:
        terms = touched if touched else set()
        if counts.df.keys() - terms:  # a full recount: every term is new
            terms = set(counts.df)
        rows = [
            meta_row(f"term:{t}", None, counts.df.get(t, 0))
            for t in terms
            if counts.df.get(t, 0) > 0
        ]
        dead = [f"term:{t}" for t in terms if counts.df.get(t, 0) <= 0]
        rows += [meta_row(f"doc:{d}", records[d]) for d in changed]
        stats = {
            "passages": counts.passages,
            "total_length": counts.total_length,
            "weights_avglen": avglen,
            "embedding_model": encoder.model_id,
            "dimension": encoder.dimension,
            "updated": now(),
        }
        rows.append(meta_row("stats", stats))
        for chunk in batches(rows):
            self._call(self.client.upsert, self.meta, list(chunk))
        for chunk in batches(dead + [f"doc:{d}" for d in gone]):
            self._call(self.client.delete, self.meta, ids=list(chunk))

    # -- documents ----------------------------------------------------------------------------

    def list_documents(self) -> DocumentListing:
        if not self._exists():
            raise LudaoError(
                f"no Milvus store at {self.location}; run `ludao index --store milvus`"
            )
        records = [DocumentRecord.from_dict(e) for e in self._records().values()]
        return DocumentListing(
            index_dir=Path(self.location),
            documents=sorted(records, key=lambda r: r.id),
            excluded=self._excluded(),
            created=self._stats().get("updated"),
        )

    def remove_document(self, key: str) -> DocumentRecord:
        """Delete a document's passages and remember it as removed (as ``qa.index.admin``)."""
        listing = self.list_documents()
        target = _find(listing.documents, key)
        if target is None:
            raise LudaoError(
                f"no document {key!r} in {self.location}; `ludao docs list` shows them"
            )
        old = self._rows([target.id], ["id", "text"])
        stats = self._stats()
        terms = [PassageTerms.of(r["text"]) for r in old]
        touched = {t for item in terms for t in item.counts}
        counts = self._term_stats(stats, touched)
        counts.add(terms, -1)
        self._call(self.client.delete, self.collection, filter=f"doc_id == {quote(target.id)}")
        removed = RemovedDocument(target.id, target.source, target.sha256, now())
        self._call(
            self.client.upsert, self.meta, [meta_row(f"excluded:{target.id}", removed.to_entry())]
        )
        avglen = float(stats.get("weights_avglen", 0.0))
        model = _Model(stats.get("embedding_model", ""), stats.get("dimension", 0))
        self._save_meta(counts, touched, {}, [], [target.id], model, avglen)  # type: ignore[arg-type]
        return target

    def restore_document(self, key: str) -> RemovedDocument:
        match = next((e for e in self._excluded() if e.is_named(key)), None)
        if match is None:
            raise LudaoError(f"no removed document {key!r} in {self.location}")
        self._call(self.client.delete, self.meta, ids=[f"excluded:{match.id}"])
        return match


class _Model:
    """The model fields ``_save_meta`` records, when no encoder is loaded (a removal)."""

    def __init__(self, model_id: str, dimension: int) -> None:
        self.model_id, self.dimension = model_id, dimension


def _row(passage: Passage, vector: Any, sparse: dict[int, float], source: str) -> dict[str, Any]:
    """A passage row; ``groups`` (everyone) is set by the caller from the document's label."""
    return {
        **{k: getattr(passage, k) for k in ("id", "doc_id", "title", "text", "start", "end")},
        "orig_start": passage.orig_start,
        "orig_end": passage.orig_end,
        "page": -1 if passage.page is None else passage.page,
        "source": source,
        "groups": "",
        "content_hash": text_key(passage.text),
        "dense": vector.tolist(),
        "sparse": sparse,
    }


def _same(entry: dict[str, Any] | None, record: DocumentRecord, passages: list[Passage]) -> bool:
    if entry is None or entry.get("passages_sha") != passages_digest(passages):
        return False
    return DocumentRecord.from_dict(entry).same_file(record)


def _under(source: str, roots: list[str]) -> bool:
    return bool(source) and any(
        source == r or source.startswith(r.rstrip("/") + "/") for r in roots
    )


def _find(records: list[DocumentRecord], key: str) -> DocumentRecord | None:
    source = str(Path(key).resolve()) if key else ""
    return next((r for r in records if r.id == key), None) or next(
        (r for r in records if r.source and r.source == source), None
    )
