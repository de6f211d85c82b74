"""Ludao (鹭岛): extractive question answering over an organisation's own documents.

Data flow: ``corpus`` (``loaders`` + ``cleaning`` → documents) → ``chunking`` (passages) →
``index`` (embeddings into a saved FAISS folder) → ``retrieval`` (dense + BM25) → ``readers``
(answer spans) → ``pipeline`` (answers with citations); ``eval`` measures it, ``web`` serves it.
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
