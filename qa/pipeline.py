"""Question in, cited answers out: retrieve passages, read them, report what was found where."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from .access import DocumentAccess
from .answer_cache import AnswerCache, normalise_question
from .batching import MicroBatcher
from .config import Settings
from .conversation import Turn, parse_history, resolver_for
from .cpu_share import CpuShare, ThreadFitter
from .errors import QuestionError
from .readers import Reader, Reading, reader_from_settings
from .retrieval import Retriever
from .schema import Hit, PipelineInfo, Response

logger = logging.getLogger(__name__)

_Asked = tuple[str, int, dict[str, frozenset]]
"""What the batcher is given per question: the text answered, ``top_k`` and the search scope."""


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
    access: DocumentAccess | None = None
    """Document groups (``qa.access``); ``ask(groups=...)`` searches only what those may read."""
    micro_batch: int = 1
    """Most questions answered in one pass when callers in several threads ask at the same
    moment (``qa.batching``); 1 answers each alone."""
    micro_batch_window_ms: float = 0.0
    compute_thread: bool = False
    """Compute a question asked alone on the pipeline's one thread (the batcher's). Servers
    set it: each thread that runs torch keeps an OpenMP team, and with more of their threads
    alive than CPUs libgomp throttles spinning for all, so the many request threads ran at the
    sleeping policy's speed (``benchmarks/compute_thread.py``). A question asked while another
    computes runs in its caller's thread (queueing all behind one lost answers/s), its threads
    shared with the other (``qa.cpu_share``): on 2 cores one each, so it starts no team."""
    threads: ThreadFitter | None = None
    """Fits torch's thread count to the free CPUs before each question (``adaptive`` policy);
    ``None`` keeps the count fixed."""

    def __post_init__(self) -> None:
        self.cache = AnswerCache(self.cache_size)
        self.batcher: MicroBatcher[_Asked, Response] | None = None
        self._computing = 0  # questions being computed now
        self._flight_lock = threading.Lock()
        if self.micro_batch > 1 or self.compute_thread:
            self.batcher = MicroBatcher(
                self._answer_batch,
                max_batch=self.micro_batch,
                window_ms=self.micro_batch_window_ms,
            )

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        *,
        groups: frozenset[str] | None = None,
        history: Sequence[Turn | str | dict] | None = None,
    ) -> Response:
        """Answer ``question`` from the indexed passages; answers best first, with citations.

        ``groups`` are the asking user's (``qa.access.User.groups``): only passages of documents
        they may read are searched, and cached answers are shared only between callers who may
        read the same passages. ``None`` (the operator's CLI) searches everything.

        ``history`` holds the conversation's earlier turns, oldest first (``qa.conversation``):
        a follow-up that leans on them is answered as the question it stands for, reported in
        ``Response.interpreted_as``, and cached under that question.
        """
        if top_k is None:
            top_k = self.top_k
        if not 1 <= top_k <= 50:
            raise QuestionError("top_k must be between 1 and 50")
        text = clean_question(question, max_chars=self.max_question_chars)
        t0 = time.perf_counter()
        asked, interpreted = self._interpret(text, history)
        scope = self._scope(groups)
        key = (normalise_question(asked), top_k, self.reader_top_k, *scope.values())
        owners = self._cache_owners()
        cached = self.cache.get(key, owners)
        if cached is not None:
            ms = (time.perf_counter() - t0) * 1000
            timings = {"cache": ms, "total": ms}
            return replace(cached, question=text, interpreted_as=interpreted, timings_ms=timings)
        with self._counted() as alone:
            if self.batcher is None or (self.micro_batch == 1 and not alone):
                response = self._answer(asked, top_k, scope)
            else:
                response, waited_s = self.batcher.submit((asked, top_k, scope))
                timings = dict(response.timings_ms)
                timings["queue"] = waited_s * 1000
                timings["total"] = timings.get("total", 0.0) + timings["queue"]
                response = replace(response, timings_ms=timings)
        self.cache.put(key, owners, response)
        return replace(response, question=text, interpreted_as=interpreted)

    @contextmanager
    def _counted(self) -> Iterator[bool]:
        """Counts a question while it is computed; yields whether it is the only one."""
        with self._flight_lock:
            self._computing += 1
            alone = self._computing == 1
        try:
            yield alone
        finally:
            with self._flight_lock:
                self._computing -= 1

    def _interpret(
        self, text: str, history: Sequence[Turn | str | dict] | None
    ) -> tuple[str, str | None]:
        """The question to answer and, for a follow-up, the self-contained one it stands for."""
        if not history:
            return text, None
        turns = parse_history(history)
        resolution = resolver_for(getattr(self.retriever, "passages", ())).resolve(text, turns)
        rebuilt = resolution.interpreted_as
        if rebuilt is None or len(rebuilt) > self.max_question_chars:
            return text, None
        return rebuilt, rebuilt

    def _cache_owners(self) -> tuple[object, ...]:
        """The objects a cached answer depends on; replacing any of them empties the cache."""
        retriever = self.retriever
        return (
            retriever,
            self.reader,
            getattr(retriever, "passages", None),
            getattr(retriever, "dense_index", None),
        )

    def _scope(self, groups: frozenset[str] | None) -> dict[str, frozenset]:
        """The retriever's filter for a user of ``groups``; ``{}`` searches everything.

        The FAISS retriever takes the allowed passage positions (``qa.access``); a shared store
        (``qa.stores``) holds no positions here and filters by the groups inside its engine.
        """
        if self.access is not None:
            allowed = self.access.allowed_rows(groups)
            return {} if allowed is None else {"allowed": allowed}
        scoped = getattr(self.retriever, "scope", None)
        return scoped(groups) if callable(scoped) else {}

    def fit_threads(self) -> int:
        """Fit the calling thread's torch threads to the free CPUs now, shared with the other
        questions computed at once (a batch is one); returns the count, 0 when it is fixed."""
        if self.threads is None:
            return 0
        return self.threads.fit(1 if self.micro_batch > 1 else self._computing)

    def _answer(self, text: str, top_k: int, scope: dict[str, frozenset] | None = None) -> Response:
        t0 = time.perf_counter()
        self.fit_threads()
        hits = self.retriever.search(text, top_k=top_k, **(scope or {}))
        t1 = time.perf_counter()
        reading = self.reader.read(text, [h.passage for h in hits], top_k=self.reader_top_k)
        return self._response(text, hits, reading, (t0, t1, time.perf_counter()))

    def _answer_batch(self, items: list[_Asked]) -> list[Response]:
        """Answers to questions asked at the same moment: their query vectors in one call of
        the encoder, their passages in one pass of the reader (``qa.batching``).

        Each answer is the one :meth:`_answer` gives its question alone (tested), and each
        response carries the batch's timings, since its stages ran for all of them at once.
        """
        if len(items) == 1:
            return [self._answer(*items[0])]
        t0 = time.perf_counter()
        self.fit_threads()
        search_many = getattr(self.retriever, "search_many", None)
        if callable(search_many) and all(set(scope) <= {"allowed"} for _, _, scope in items):
            found = search_many([(text, k, scope.get("allowed")) for text, k, scope in items])
        else:  # a shared store's searcher filters by groups itself: one search each
            found = [self.retriever.search(text, top_k=k, **scope) for text, k, scope in items]
        t1 = time.perf_counter()
        requests = [
            (text, [h.passage for h in hits], self.reader_top_k)
            for (text, _, _), hits in zip(items, found, strict=True)
        ]
        read_many = getattr(self.reader, "read_many", None)
        if callable(read_many):
            readings = read_many(requests)
        else:
            readings = [self.reader.read(text, passages, top_k=k) for text, passages, k in requests]
        times = (t0, t1, time.perf_counter())
        return [
            self._response(text, hits, reading, times)
            for (text, _, _), hits, reading in zip(items, found, readings, strict=True)
        ]

    def _response(
        self, text: str, hits: list[Hit], reading: Reading, times: tuple[float, float, float]
    ) -> Response:
        t0, t1, t2 = times
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

    def visible_counts(self, groups: frozenset[str] | None) -> dict[str, int]:
        """Documents and passages a user of ``groups`` may read (what ``/healthz`` counts)."""
        counted = getattr(self.retriever, "visible_counts", None)  # a shared store counts itself
        if self.access is None and callable(counted):
            return counted(groups)
        passages = getattr(self.retriever, "passages", ())
        allowed = self.access.allowed_rows(groups) if self.access is not None else None
        rows = range(len(passages)) if allowed is None else allowed
        return {
            "documents": len({passages[i].doc_id for i in rows}),
            "passages": len(rows),
        }

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        rebuild: bool = False,
        preload_reader: bool = False,
        compute_thread: bool = False,
    ) -> Pipeline:
        """Open (or build) the index of ``settings.corpus`` and load the configured reader.

        ``preload_reader`` loads the reader's model in a thread while the index and the
        embedding model load (a server's cold start); otherwise it loads at the first question.
        ``compute_thread``: see :attr:`Pipeline.compute_thread` (servers set it).
        """
        # Imported here: ``import qa`` stays free of the corpus walker and the index format.
        from .corpus import corpus_from_settings
        from .index import locate_index, update_index
        from .index.labels import document_access

        apply_thread_settings(settings.torch_threads, settings.omp_wait_policy)
        reader = reader_from_settings(settings)
        if preload_reader:
            _load_in_background(reader)
        if settings.vector_store != "faiss":  # a shared store (qa.stores): Milvus
            return cls._from_store(settings, reader, rebuild=rebuild, compute_thread=compute_thread)
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
        access = document_access(settings, index_dir, retriever.passages)
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
            access=access,
            micro_batch=settings.micro_batch,
            micro_batch_window_ms=settings.micro_batch_window_ms,
            compute_thread=compute_thread,
            threads=thread_fitter(settings),
        )

    @classmethod
    def _from_store(
        cls, settings: Settings, reader: Reader, *, rebuild: bool, compute_thread: bool
    ) -> Pipeline:
        """The pipeline over a shared vector store; its searcher filters groups in the engine."""
        from .stores import open_searcher

        opened = open_searcher(settings, rebuild=rebuild)
        return cls(
            retriever=opened.searcher,  # type: ignore[arg-type]  # qa.stores.Searcher
            reader=reader,
            top_k=settings.top_k,
            reader_top_k=settings.reader_top_k,
            max_question_chars=settings.max_question_chars,
            description={
                "corpus": list(settings.corpus),
                "documents": opened.documents,
                "passages": opened.passages,
                "embedding_model": settings.embedding_model,
                "index_dir": opened.location,
            },
            cache_size=settings.answer_cache_size,
            micro_batch=settings.micro_batch,
            micro_batch_window_ms=settings.micro_batch_window_ms,
            compute_thread=compute_thread,
            threads=thread_fitter(settings),
        )


def thread_fitter(settings: Settings) -> ThreadFitter | None:
    """The ``adaptive`` policy's fitter, up to ``torch_threads`` (or torch's own count) threads;
    ``None`` under any other policy or where the CPUs' load cannot be read."""
    if settings.omp_wait_policy.lower() != "adaptive":
        return None
    share = CpuShare()
    if not share.available:
        logger.info("adaptive threads: no /proc/stat here, torch's thread count stays fixed")
        return None
    import torch

    return ThreadFitter(settings.torch_threads or torch.get_num_threads(), share=share)


LIBGOMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
"""What :func:`apply_thread_settings` may set. It never sets one the environment already has,
so a benchmark comparing policies takes them out of its child processes' environment."""

BRIEF_SPIN_COUNT = "20000"
"""libgomp's spins before a waiting thread sleeps under the ``brief`` policy: about 0.2 ms
(libgomp reckons 100,000 spins a millisecond), against 3 ms for its default and none for
``passive``. A question's forward pass is ~100 small parallel regions a few µs apart."""


def apply_thread_settings(threads: int, omp_wait_policy: str = "") -> None:
    """Process-wide thread policy, so only ``from_settings`` (CLI and UI) applies it.

    ``threads`` sets torch's intra-op threads (0 leaves torch's choice). ``omp_wait_policy``:

    - ``adaptive`` (default): ``brief``'s spinning, and before each question the computing
      thread takes as many torch threads as the CPUs other processes leave free
      (:class:`qa.cpu_share.ThreadFitter`, which :meth:`Pipeline.from_settings` attaches): a
      team of one has no barrier to spin at. Seed p50 43.8 ms quiet and 56.7 ms beside a busy
      process, against 59.8 and 61.3 for ``passive`` (benchmarks/results/wait_policy.md).
    - ``brief``: libgomp spins ``BRIEF_SPIN_COUNT`` times before it sleeps (``GOMP_SPINCOUNT``),
      spanning the gaps between one forward pass's ops. On a machine of its own it is the
      fastest (seed p50 43.0 ms against 59.8 passive), but beside one busy process 4× slower
      (251 against 61 ms; benchmarks/results/wait_policy.md), which ``adaptive`` avoids.
      libgomp cuts any spinning to 100 spins while more of its threads exist than
      CPUs (torch run from several threads): then it is ``passive`` in effect.
    - ``passive`` / ``active``: ``OMP_WAIT_POLICY``. Why not libgomp's default spinning: two
      torch threads on a 2-core machine that other processes also use then spend most of a
      reader call waiting at barriers for a descheduled peer (benchmarks/results/speed.md).
    - ``""`` leaves libgomp's defaults.

    Nothing is set over a variable the environment already has. libgomp reads them once when
    torch loads, so they only take effect if torch is not imported yet.
    """
    policy = omp_wait_policy.lower()
    variables = {
        "adaptive": {"GOMP_SPINCOUNT": BRIEF_SPIN_COUNT},
        "brief": {"GOMP_SPINCOUNT": BRIEF_SPIN_COUNT},
        "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
        "active": {"OMP_WAIT_POLICY": "ACTIVE"},
        "": {},
    }.get(policy)
    if variables is None:
        raise ValueError(
            f"omp_wait_policy {omp_wait_policy!r}: adaptive, brief, passive, active or ''"
        )
    if policy in ("adaptive", "brief") and "OMP_WAIT_POLICY" in os.environ:
        variables = {}  # the user's policy decides the spinning
    missing = {k: v for k, v in variables.items() if k not in os.environ}
    if missing and "torch" in sys.modules:
        logger.info("torch already loaded; %s not applied", missing)
    elif missing:
        os.environ.update(missing)
    if threads <= 0:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.info("torch intra-op threads set to %d", threads)


def _load_in_background(reader: Reader) -> None:
    """Start loading ``reader``'s model in a thread. Its first ``read`` waits for that load
    (the reader's own lock), and a load that failed here is tried again there and raises
    there, as a lazy load would."""
    warm_up = getattr(reader, "warm_up", None)
    if warm_up is None:  # the sentence baseline has no model
        return

    def load() -> None:
        try:
            warm_up()
        except Exception as exc:  # raised again, to the caller, at the first question
            logger.warning("reader did not load in the background: %s", exc)

    threading.Thread(target=load, name="ludao-reader-load", daemon=True).start()
