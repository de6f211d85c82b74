"""The embedded default: one saved index folder, searched in this process (``qa.index``).

A thin adapter over ``qa.index``: the folder format, the incremental update and the document
admin are exactly those of ``ludao index`` before stores existed, so an existing folder keeps
working unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.index import (
    DocumentListing,
    RemovedDocument,
    list_documents,
    remove_document,
    restore_document,
    update_index,
)

from .base import StoreUpdate

if TYPE_CHECKING:
    from embeddings.encoder import Encoder
    from qa.corpus import Corpus, DocumentRecord


@dataclass(frozen=True)
class FaissStore:
    """The saved folder at ``index_dir`` (``qa.index.locate_index`` says where)."""

    index_dir: Path
    name: str = "faiss"

    def sync(
        self, corpus: Corpus, encoder: Encoder, *, rebuild: bool = False, **options: Any
    ) -> StoreUpdate:
        update = update_index(corpus, encoder, self.index_dir, rebuild=rebuild, **options)
        retriever = update.retriever
        return StoreUpdate(
            searcher=retriever,
            location=str(self.index_dir),
            mode=update.mode,
            reused=update.reused,
            embedded=update.embedded,
            removed=update.removed,
            documents=len({p.doc_id for p in retriever.passages}),
            passages=len(retriever),
            excluded=update.excluded,
            reason=update.reason,
        )

    def list_documents(self) -> DocumentListing:
        return list_documents(self.index_dir)

    def remove_document(self, key: str) -> DocumentRecord:
        return remove_document(self.index_dir, key)

    def restore_document(self, key: str) -> RemovedDocument:
        return restore_document(self.index_dir, key)
