"""A pipeline that a running server can swap for a fresh one without a restart.

Documents change while the chat is up. Reloading builds a complete new :class:`Pipeline` (which
updates the saved index incrementally) beside the one that is serving, and only then swaps the
reference, so a question is always answered by one whole pipeline: never by a half-built index,
never by a mix of the old passages and the new vectors. A failed reload leaves the old pipeline
serving and reports why.

Changes are noticed either on request (``POST /api/reload``) or by a watcher thread that polls the
corpus files' names, sizes and modification times; polling needs no extra dependency and costs a
directory walk every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .corpus import corpus_files
from .errors import LudaoError

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .schema import PipelineInfo, Response

logger = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


def corpus_signature(paths: Iterable[str | Path]) -> Signature:
    """Name, size and mtime (ns) of every non-hidden file under ``paths``, sorted.

    The files are walked as a corpus is read (``qa.corpus.corpus_files``), patterns aside. Cheap
    enough to poll: no file is opened. A change in any of them means the corpus may have
    changed; the index update itself decides, by content hash, what really did.
    """
    entries: list[tuple[str, int, int]] = []
    for file, _ in corpus_files(paths):
        try:
            stat = file.stat()
        except OSError:  # missing, or removed while walking: the next poll sees the final state
            continue
        if file.is_file():
            entries.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did, for the API and the logs."""

    reloaded: bool
    seconds: float
    info: PipelineInfo
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reloaded": self.reloaded,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            **self.info.to_dict(),
        }


class ReloadablePipeline:
    """Serves ``ask``/``info`` from the current pipeline; ``reload`` swaps in a new one.

    Args:
        factory: builds a complete pipeline (normally ``Pipeline.from_settings`` with the
            server's settings); called on reload, in the reloading thread.
        pipeline: the pipeline to serve first; built with ``factory`` when omitted.
        corpus: paths to watch with :meth:`start_watching`.
    """

    def __init__(
        self,
        factory: Callable[[], Pipeline],
        pipeline: Pipeline | None = None,
        *,
        corpus: Iterable[str | Path] = (),
    ) -> None:
        self._factory = factory
        self._corpus = tuple(corpus)
        # Read before building, as in reload(): a file changed during the build is seen as a
        # change by the next poll instead of being taken for part of the served index.
        self._signature = corpus_signature(self._corpus)
        self._current = pipeline if pipeline is not None else factory()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.generation = 1
        """Counts pipelines served so far; changes with each successful reload."""

    @property
    def current(self) -> Pipeline:
        return self._current

    def ask(self, question: str, top_k: int | None = None, **options: Any) -> Response:
        # One attribute read: the whole question is answered by the pipeline read here, even if
        # a reload swaps the reference meanwhile. ``options`` (history=, …) go to Pipeline.ask.
        return self._current.ask(question, top_k=top_k, **options)

    def info(self) -> PipelineInfo:
        return replace(self._current.info(), generation=self.generation)

    def reload(self) -> ReloadResult:
        """Build a new pipeline and swap it in; on failure keep serving the old one.

        Concurrent calls are serialised: a second caller waits and then builds again, which is
        cheap when nothing changed (the saved index is reused).
        """
        with self._reload_lock:
            t0 = time.perf_counter()
            signature = corpus_signature(self._corpus)
            try:
                fresh = self._build()
            except LudaoError as exc:
                logger.error("reload failed; still serving the previous index: %s", exc)
                return ReloadResult(False, time.perf_counter() - t0, self.info(), str(exc))
            except Exception as exc:
                logger.exception("reload failed; still serving the previous index")
                message = f"reload failed ({type(exc).__name__}); see the server log"
                return ReloadResult(False, time.perf_counter() - t0, self.info(), message)
            self._current = fresh
            self._signature = signature
            self.generation += 1
            seconds = time.perf_counter() - t0
            logger.info("reloaded the pipeline in %.2f s (generation %d)", seconds, self.generation)
            return ReloadResult(True, seconds, self.info())

    def _build(self) -> Pipeline:
        """The factory's pipeline, built on a thread of its own that then ends: a build runs
        torch, and a long-lived thread (the watcher's) would keep its OpenMP team, which stops
        the serving thread's team from spinning (``Pipeline.compute_thread``)."""
        with ThreadPoolExecutor(1, thread_name_prefix="ludao-reload") as pool:
            return pool.submit(self._factory).result()

    def changed(self) -> bool:
        """Whether the corpus files differ from those of the pipeline being served."""
        return corpus_signature(self._corpus) != self._signature

    def start_watching(self, interval: float = 5.0) -> None:
        """Poll the corpus every ``interval`` seconds in a daemon thread; reload on change."""
        if interval <= 0:
            raise ValueError(f"the watch interval must be positive, got {interval}")
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                if self.changed():
                    logger.info("the corpus changed on disk; reloading")
                    self.reload()

        self._watcher = threading.Thread(target=loop, name="ludao-corpus-watch", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
