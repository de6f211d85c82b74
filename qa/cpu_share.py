"""How many torch threads a question should use now: the CPUs other processes leave free.

Two threads that spin briefly at each barrier answer fastest on a quiet 2-core machine (seed
p50 43 ms against 60 ms with sleeping threads), but beside one busy process a spinning team
waits for a descheduled member at every one of a forward pass's ~100 barriers (251 ms;
``benchmarks/results/wait_policy.md``). A team of one has no barrier at all. So before each
question the computing thread takes as many threads as the CPUs other processes left idle over
the last fraction of a second, between one and its most, split among the questions this
process computes at that moment: on 2 cores a question computed beside another gets one thread,
so it starts no OpenMP team of its own (``Pipeline.compute_thread`` says why that matters).

It reads Linux's ``/proc/stat`` (all CPUs' busy time) and subtracts this process's own CPU time,
so the server's own threads never count as load. Where ``/proc/stat`` cannot be read the most
threads are used, as without this module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

__all__ = ["CpuShare", "ThreadFitter"]

logger = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuShare:
    """CPUs busy with other processes' work between two calls of :meth:`others_busy`.

    ``/proc/stat`` counts in clock ticks (10 ms), so a window under ~0.1 s says little: the
    share is only recomputed once ``window_s`` has passed, and the last figure is kept between.
    """

    def __init__(self, window_s: float = 0.2, stat_path: str | Path = "/proc/stat") -> None:
        self.window_s = window_s
        self.stat_path = Path(stat_path)
        self._last = self._sample()
        self._share = 0.0
        self._lock = threading.Lock()  # request threads without micro-batching fit at once

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall s, all CPUs' busy s, this process's CPU s), or ``None`` off Linux."""
        try:
            with self.stat_path.open("rb") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if len(fields) < 5 or fields[0] != b"cpu":
            return None
        ticks = [int(x) for x in fields[1:9]]
        # user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
        return time.monotonic(), busy / _CLOCK_TICKS, time.process_time()

    @property
    def available(self) -> bool:
        return self._last is not None

    def others_busy(self) -> float:
        """CPUs' worth of work other processes did over the latest window (0 when unknown)."""
        if self._last is None:
            return 0.0
        with self._lock:
            last = self._last
            if time.monotonic() - last[0] < self.window_s:
                return self._share
            now = self._sample()
            if now is None:
                return self._share
            elapsed = now[0] - last[0]
            others = (now[1] - last[1]) - (now[2] - last[2])
            self._share = max(0.0, others / elapsed) if elapsed > 0 else self._share
            self._last = now
            return self._share


class ThreadFitter:
    """Sets the calling thread's torch threads to what the machine can give it now.

    OpenMP's thread count is per calling thread, so :meth:`fit` must run on the thread that
    then runs the model (the micro-batcher's, or the caller's). It returns the count it set.
    """

    def __init__(self, most: int, cpus: int | None = None, share: CpuShare | None = None) -> None:
        self.most = max(1, most)
        self.cpus = cpus or os.cpu_count() or 1
        self.share = share or CpuShare()
        self.last = self.most

    def threads_now(self, sharing: int = 1) -> int:
        """``cpus`` minus the CPUs others keep busy, split among ``sharing`` questions computed
        at once in this process (rounded), between 1 and ``most``."""
        free = (self.cpus - self.share.others_busy()) / max(1, sharing)
        return max(1, min(self.most, int(free + 0.5)))

    def fit(self, sharing: int = 1) -> int:
        import torch

        threads = self.threads_now(sharing)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if threads != self.last:
            logger.debug("torch threads %d -> %d (others' CPU share)", self.last, threads)
            self.last = threads
        return threads
