"""Micro-batching: questions that arrive together are embedded and read together.

When eight staff ask at once on a two-core server, answering each in its own thread makes eight
small model calls fight over two cores: every call pays the tokenizer, dispatch and weight-layout
costs, and its matrix products are slivers the CPU cannot fill. Serving systems batch requests
instead; :class:`MicroBatcher` is that queue in front of the pipeline. Callers block in
:meth:`~MicroBatcher.submit`; one worker thread takes every request that is waiting when it is
free (up to ``max_batch``) and runs them as one call. Under no load a question goes straight
through (nothing is waiting, so the batch is that one question); under load, requests pile up
while a batch runs and form the next. The callers of a finished batch come back with their next
questions a moment later, not at once: without a wait the next batch would be whichever came
first, alone, and batches would alternate big and small. So after a batch of ``n`` the next one
is held open up to ``window_ms`` until ``n`` are waiting; after a batch of one nothing waits,
which keeps a lone user's latency as it was.

A batch that fails is retried one request at a time, so a single bad request fails alone and its
batch-mates still get their answers. The worker exits after ``idle_s`` without work and starts
again on the next request: a pipeline replaced on reload leaves no thread behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["MicroBatcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """``batcher.submit(item)`` from many threads; ``run(items)`` sees them in batches.

    Args:
        run: answers a batch; returns one result per item, in order.
        max_batch: most items per call of ``run``.
        window_ms: how long a batch waits for as many items as the previous batch had
            (0: never; take what is waiting and go).
        idle_s: the worker thread exits after this long without items.
    """

    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch: int = 8,
        window_ms: float = 0.0,
        idle_s: float = 30.0,
        name: str = "ludao-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if window_ms < 0:
            raise ValueError(f"window_ms must not be negative, got {window_ms}")
        self.run = run
        self.max_batch = max_batch
        self.window_s = window_ms / 1000
        self.idle_s = idle_s
        self.name = name
        self._pending: list[tuple[Item, Future[Result], float]] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._last_size = 1
        self.batches = 0
        """Calls of ``run`` so far (retries of a failed batch count too)."""
        self.items = 0
        """Items answered so far; ``items / batches`` is the mean batch size."""

    def submit(self, item: Item) -> tuple[Result, float]:
        """``run``'s result for ``item`` and the seconds it waited for its batch to start.

        Raises whatever ``run`` raised for this item alone.
        """
        future: Future[Result] = Future()
        with self._ready:
            self._pending.append((item, future, time.perf_counter()))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._worker.start()
            self._ready.notify()
        result = future.result()
        return result, getattr(future, "waited_s", 0.0)

    def _work(self) -> None:
        while True:
            with self._ready:
                idle_until = time.monotonic() + self.idle_s
                while not self._pending:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        self._worker = None
                        return
                    self._ready.wait(left)
                expected = min(self._last_size, self.max_batch)
                if self.window_s > 0 and len(self._pending) < expected:
                    closes = time.monotonic() + self.window_s
                    while len(self._pending) < expected:
                        left = closes - time.monotonic()
                        if left <= 0:
                            break
                        self._ready.wait(left)
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                self._last_size = len(batch)
            started = time.perf_counter()
            for _, future, queued in batch:
                future.waited_s = started - queued  # type: ignore[attr-defined]
            self._answer([(item, future) for item, future, _ in batch])

    def _answer(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        try:
            results = list(self.run(items))
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} got {len(results)} results")
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            logger.info("a batch of %d failed (%s); answering each alone", len(batch), exc)
            for one in batch:
                self._answer([one])
            return
        self.items += len(items)
        logger.debug("answered a batch of %d", len(items))
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
