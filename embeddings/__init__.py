"""Embedding models and the dense vector index.

Nothing here imports ``qa`` at import time, and nothing heavy (torch, sentence-transformers,
FAISS) loads until a model or index is actually used.
"""

from __future__ import annotations

from .encoder import Encoder, SentenceEncoder
from .index import FaissIndex
from .models import DEFAULT_EMBEDDING_MODEL, resolve_model

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Encoder", "FaissIndex", "SentenceEncoder", "resolve_model"]
