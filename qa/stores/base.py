"""The vector-store boundary: what a place that holds passages and their vectors must do.

Two implementations: :class:`~qa.stores.faiss_store.FaissStore` (the saved folder under
``$LUDAO_HOME/indexes``, searched in this process: the embedded default) and
:class:`~qa.stores.milvus_store.MilvusStore` (a Milvus Lite file, a Milvus server or a cluster,
shared by any number of servers). Both update incrementally from a corpus, list, remove and
restore documents, and hand out a searcher with the :class:`Searcher` shape the pipeline uses.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from qa.access import EVERYONE
from qa.errors import LudaoError

if TYPE_CHECKING:
    from embeddings.encoder import Encoder
    from qa.corpus import Corpus, DocumentRecord
    from qa.index import DocumentListing, RemovedDocument
    from qa.schema import Hit


class StoreUnavailableError(LudaoError):
    """The vector store cannot be reached; the message says which and why (HTTP 503)."""


class Searcher(Protocol):
    """What the pipeline searches: ``qa.retrieval.Retriever`` and the Milvus searcher."""

    def search(self, query: str, top_k: int = 5) -> list[Hit]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class StoreUpdate:
    """What :meth:`VectorStore.sync` did, and the searcher over the result.

    ``mode`` and the counts mean what they mean for ``qa.index.IndexUpdate``; ``location`` is
    the folder (FAISS) or ``uri#collection`` (Milvus) for ``/healthz`` and reports.
    """

    searcher: Searcher
    location: str
    mode: Literal["unchanged", "updated", "built"]
    reused: int
    embedded: int
    removed: int
    documents: int
    passages: int
    excluded: list[str] = field(default_factory=list)
    reason: str | None = None

    def counts(self) -> dict[str, int]:
        return {"reused": self.reused, "embedded": self.embedded, "removed": self.removed}


class VectorStore(Protocol):
    """Holds passages with their dense and sparse vectors; searched by :class:`Searcher`."""

    name: str
    """``"faiss"`` or ``"milvus"``."""

    def sync(
        self, corpus: Corpus, encoder: Encoder, *, rebuild: bool = False, **options: Any
    ) -> StoreUpdate:
        """Bring the store up to date with ``corpus`` (embedding only new or changed passages).

        ``options`` are the ranking settings (``rrf_k``, ``dense_weight``, ``sparse_weight``,
        ``candidates``) for the returned searcher.
        """
        ...

    def list_documents(self) -> DocumentListing: ...

    def remove_document(self, key: str) -> DocumentRecord: ...

    def restore_document(self, key: str) -> RemovedDocument: ...


def group_filter(groups: Collection[str] | None) -> str | None:
    """A Milvus filter admitting passages open to everyone or to one of ``groups``.

    Groups are stored hex-encoded between commas (:func:`stored_groups`; ``""``: everyone), so a
    ``like`` on ``",<hex>,"`` matches one whole group name only: a name's ``_`` (allowed by
    ``qa.access.clean_group``) is a ``like`` wildcard in Milvus, hex has none. ``None`` means no
    filtering (an administrator's CLI, or no restricted document in the store).
    """
    if groups is None:
        return None
    clauses = ['groups == ""']
    for group in sorted(set(groups) - {EVERYONE}):
        if not group:
            raise ValueError("empty access group name")
        clauses.append(f'groups like "%,{_hex(group)},%"')
    return " or ".join(clauses)


def stored_groups(groups: Collection[str]) -> str:
    """The VARCHAR form of a document's access groups: ``""`` when everyone may read it."""
    names = sorted(set(groups) - {""})
    if not names or EVERYONE in names:
        return ""
    return f",{','.join(_hex(n) for n in names)},"


def _hex(group: str) -> str:
    return group.encode("utf-8").hex()
