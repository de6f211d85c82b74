"""The saved index of a corpus: where it lives, how it is updated, which documents it holds.

``update_index`` is the one way to open or build an index (``locate_index`` says where it is);
``qa.index.admin`` lists, removes and restores documents; ``qa.index.store`` is the folder format
and ``qa.index.lock`` the writer lock. Searching is ``qa.retrieval``.
"""

from __future__ import annotations

from .admin import (
    DocumentListing,
    RemovedDocument,
    list_documents,
    remove_document,
    restore_document,
)
from .location import IndexLocation, locate_index
from .update import IndexUpdate, load_retriever, save_retriever, update_index

__all__ = [
    "DocumentListing",
    "IndexLocation",
    "IndexUpdate",
    "RemovedDocument",
    "list_documents",
    "load_retriever",
    "locate_index",
    "remove_document",
    "restore_document",
    "save_retriever",
    "update_index",
]
