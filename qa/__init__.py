"""Ludao (鹭岛): extractive question answering over an organisation's own documents.

Data flow: ``documents`` (load + clean) → ``chunking`` (passages) → ``embeddings`` + ``retrieval``
(hybrid FAISS/BM25 index) → ``readers`` (answer spans) → ``pipeline`` (answers with citations).
"""

from __future__ import annotations

from .config import Settings
from .pipeline import Pipeline
from .retrieval import Retriever
from .schema import Answer, Document, Hit, Passage, Response, Span

__all__ = [
    "Answer",
    "Document",
    "Hit",
    "Passage",
    "Pipeline",
    "Response",
    "Retriever",
    "Settings",
    "Span",
]
