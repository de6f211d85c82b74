"""Question in, cited answers out: retrieve passages, read them, report what was found where."""

from __future__ import annotations

import logging
import os
import sys
import time
import unicodedata
from dataclasses import dataclass, field, replace

from .answer_cache import AnswerCache, normalise_question
from .config import Settings
from .errors import QuestionError
from .readers import Reader, reader_from_settings
from .retrieval import Retriever
from .schema import PipelineInfo, Response

logger = logging.getLogger(__name__)


def clean_question(question: object, *, max_chars: int) -> str:
    """Validate a question; return it with control characters removed and ends stripped."""
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    cleaned = "".join(
        ch if not unicodedata.category(ch).startswith("C") else " " for ch in question
    ).strip()
    if not cleaned:
        raise QuestionError("the question is empty")
    if len(cleaned) > max_chars:
        raise QuestionError(
            f"the question is {len(cleaned)} characters long; the limit is {max_chars}"
        )
    if not any(ch.isalnum() for ch in cleaned):
        raise QuestionError("the question has no words in it")
    return cleaned


@dataclass
class Pipeline:
    """Retriever plus reader, with the limits that keep one question from hurting the server."""

    retriever: Retriever
    reader: Reader
    top_k: int = 5
    reader_top_k: int = 3
    max_question_chars: int = 500
    description: dict = field(default_factory=dict)
    cache_size: int = 0
    """Answers kept for repeated questions (0 = off); emptied when the index or reader changes."""

    def __post_init__(self) -> None:
        self.cache = AnswerCache(self.cache_size)

    def ask(self, question: str, top_k: int | None = None) -> Response:
        """Answer ``question`` from the indexed passages; answers best first, with citations."""
        if top_k is None:
            top_k = self.top_k
        if not 1 <= top_k <= 50:
            raise QuestionError("top_k must be between 1 and 50")
        text = clean_question(question, max_chars=self.max_question_chars)
        t0 = time.perf_counter()
        key = (normalise_question(text), top_k, self.reader_top_k)
        owners = self._cache_owners()
        cached = self.cache.get(key, owners)
        if cached is not None:
            ms = (time.perf_counter() - t0) * 1000
            return replace(cached, question=text, timings_ms={"cache": ms, "total": ms})
        response = self._answer(text, top_k)
        self.cache.put(key, owners, response)
        return response

    def _cache_owners(self) -> tuple[object, ...]:
        """The objects a cached answer depends on; replacing any of them empties the cache."""
        retriever = self.retriever
        return (
            retriever,
            self.reader,
            getattr(retriever, "passages", None),
            getattr(retriever, "dense_index", None),
        )

    def _answer(self, text: str, top_k: int) -> Response:
        t0 = time.perf_counter()
        hits = self.retriever.search(text, top_k=top_k)
        t1 = time.perf_counter()
        reading = self.reader.read(text, [h.passage for h in hits], top_k=self.reader_top_k)
        t2 = time.perf_counter()
        return Response(
            question=text,
            answers=reading.answers,
            hits=hits,
            no_answer=reading.no_answer,
            reader=self.reader.name,
            timings_ms={
                "retrieve": (t1 - t0) * 1000,
                "read": (t2 - t1) * 1000,
                "total": (t2 - t0) * 1000,
            },
        )

    def info(self) -> PipelineInfo:
        """What is loaded: shown in the chat and returned by ``/healthz``.

        ``description`` holds the fields of :class:`PipelineInfo` other than the reader's name.
        """
        described = dict(self.description)
        if "corpus" in described:
            described["corpus"] = tuple(described["corpus"])
        return PipelineInfo(**described, reader=self.reader.name)

    @classmethod
    def from_settings(cls, settings: Settings, *, rebuild: bool = False) -> Pipeline:
        """Open (or build) the index of ``settings.corpus`` and load the configured reader."""
        # Imported here: ``import qa`` stays free of the corpus walker and the index format.
        from .corpus import corpus_from_settings
        from .index import locate_index, update_index

        apply_thread_settings(settings.torch_threads, settings.omp_wait_policy)
        where = locate_index(settings)
        index_dir = where.index_dir
        retriever = update_index(
            corpus_from_settings(settings),
            where.encoder,
            index_dir,
            rebuild=rebuild,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            sparse_weight=settings.sparse_weight,
        ).retriever
        reader = reader_from_settings(settings)
        description = {
            "corpus": list(settings.corpus),
            # What is searchable: documents removed with `ludao docs remove` are not counted.
            "documents": len({p.doc_id for p in retriever.passages}),
            "passages": len(retriever),
            "embedding_model": settings.embedding_model,
            "index_dir": str(index_dir),
        }
        return cls(
            retriever=retriever,
            reader=reader,
            top_k=settings.top_k,
            reader_top_k=settings.reader_top_k,
            max_question_chars=settings.max_question_chars,
            description=description,
            cache_size=settings.answer_cache_size,
        )


def apply_thread_settings(threads: int, omp_wait_policy: str = "") -> None:
    """Process-wide thread policy, so only ``from_settings`` (CLI and UI) applies it.

    ``threads`` sets torch's intra-op threads (0 leaves torch's choice). ``omp_wait_policy``
    ("passive"/"active"; "" leaves it) becomes ``OMP_WAIT_POLICY`` unless the environment already
    says otherwise. Why: with libgomp's default spinning, two torch threads on a 2-core machine
    that other processes also use spend most of a reader call waiting at barriers for a
    descheduled peer (benchmarks/results/speed.md). libgomp reads the variable once when torch
    loads, so it only takes effect if torch is not imported yet.
    """
    if omp_wait_policy and "OMP_WAIT_POLICY" not in os.environ:
        if "torch" in sys.modules:
            logger.info("torch already loaded; OMP_WAIT_POLICY=%s not applied", omp_wait_policy)
        else:
            os.environ["OMP_WAIT_POLICY"] = omp_wait_policy.upper()
    if threads <= 0:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.info("torch intra-op threads set to %d", threads)
