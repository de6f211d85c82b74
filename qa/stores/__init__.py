"""Where passages and their vectors live: the vector-store boundary and its two stores.

``LUDAO_VECTOR_STORE=faiss`` (default) keeps today's saved folder, searched in process;
``LUDAO_VECTOR_STORE=milvus`` with ``LUDAO_MILVUS_URI`` (a Milvus Lite ``.db`` file or
``http://host:19530``), optional ``LUDAO_MILVUS_TOKEN`` and ``LUDAO_MILVUS_COLLECTION`` shares one
store between any number of servers. ``import qa.stores`` imports no Milvus client: that happens
when a Milvus store is opened.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Searcher, StoreUnavailableError, StoreUpdate, VectorStore

if TYPE_CHECKING:
    from embeddings.encoder import Encoder
    from qa.config import Settings
    from qa.corpus import Corpus

__all__ = [
    "Searcher",
    "StoreUnavailableError",
    "StoreUpdate",
    "VectorStore",
    "milvus_collection",
    "open_searcher",
    "open_store",
    "store_problem",
]

STORES = ("faiss", "milvus")


def milvus_collection(settings: Settings, model_id: str) -> str:
    """The configured collection, or one named after the embedding model (one per model)."""
    if settings.milvus_collection:
        return settings.milvus_collection
    slug = re.sub(r"[^A-Za-z0-9]+", "_", model_id.rsplit("/", 1)[-1]).strip("_")[:40]
    return f"ludao_{slug}_{hashlib.sha1(model_id.encode()).hexdigest()[:8]}"


def open_store(
    settings: Settings, paths: Sequence[str | Path] | None = None, *, store: str | None = None
) -> VectorStore:
    """The store ``settings`` (or ``store``) name for the corpus ``paths``; connects to Milvus.

    Raises:
        ValueError: an unknown store name.
        StoreUnavailableError: Milvus is configured but not installed or not reachable.
    """
    from qa.index import locate_index

    kind = (store or settings.vector_store).lower()
    if kind not in STORES:
        raise ValueError(f"unknown vector store {kind!r}; choose one of {', '.join(STORES)}")
    where = locate_index(settings, paths)
    if kind == "faiss":
        from .faiss_store import FaissStore

        return FaissStore(where.index_dir)
    from .milvus_client import collection_name
    from .milvus_store import MilvusStore

    uri = settings.milvus_uri or str(settings.home_dir / "milvus.db")
    if "://" not in uri:
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
    name = collection_name(milvus_collection(settings, where.encoder.model_id))
    return MilvusStore(uri, name, token=settings.milvus_token)


def open_searcher(
    settings: Settings,
    *,
    rebuild: bool = False,
    store: str | None = None,
    corpus: Corpus | None = None,
    encoder: Encoder | None = None,
) -> StoreUpdate:
    """Sync the configured store with ``settings.corpus`` and return it with its searcher.

    What ``Pipeline.from_settings`` and ``ludao index`` call. The FAISS store does exactly what
    ``qa.index.update_index`` always did. ``corpus`` is ``settings.corpus`` already read;
    ``encoder`` replaces the settings' one for embedding passages (``ludao index --ray``) and
    must carry the same ``model_id``.
    """
    from qa.corpus import corpus_from_settings
    from qa.index import locate_index

    chosen = open_store(settings, store=store)
    options: dict[str, Any] = {
        "rrf_k": settings.rrf_k,
        "dense_weight": settings.dense_weight,
        "sparse_weight": settings.sparse_weight,
    }
    if chosen.name == "milvus":
        options["roots"] = settings.corpus
        options["groups_for"] = _groups_for(settings)
    local = locate_index(settings).encoder
    if encoder is not None and encoder.model_id != local.model_id:
        raise ValueError(f"encoder {encoder.model_id} is not the configured {local.model_id}")
    encoder = encoder or local
    if corpus is None:
        corpus = corpus_from_settings(settings)
    return chosen.sync(corpus, encoder, rebuild=rebuild, **options)


def _groups_for(settings: Settings) -> Callable[[str], frozenset[str]]:
    """A document's groups from its source, as ``qa.index.labels.document_access`` decides them.

    Upload folders of the corpus keep the group chosen at upload (``qa.access.UploadGroups``).
    """
    from qa.access import UploadGroups, groups_for_source, parse_rules

    rules = parse_rules(settings.access_rules)
    uploads = [UploadGroups(p) for p in settings.corpus if Path(p).is_dir()]
    return lambda source: groups_for_source(source, rules, uploads)


def store_problem(pipeline: object) -> str | None:
    """Why the serving pipeline's store cannot answer now, or ``None`` (for ``/healthz``).

    Takes a ``Pipeline`` or a ``ReloadablePipeline``; an in-process FAISS index has no problem
    of this kind.
    """
    current = getattr(pipeline, "current", pipeline)
    health = getattr(getattr(current, "retriever", None), "health", None)
    return health() if callable(health) else None
