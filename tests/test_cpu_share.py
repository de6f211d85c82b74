"""The ``adaptive`` thread policy (``qa.cpu_share``): other processes' CPU share from
``/proc/stat`` minus this process's own time, the thread count it leaves, and the pipeline
fitting it on the thread that computes, alone or micro-batched."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FakeEncoder

from qa import cpu_share
from qa.config import Settings
from qa.cpu_share import CpuShare, ThreadFitter
from qa.pipeline import Pipeline, thread_fitter
from qa.readers.sentence import SentenceReader
from qa.retrieval import Retriever

TICKS = cpu_share._CLOCK_TICKS


class _Clock:
    """Stands in for ``time.monotonic`` and ``time.process_time`` of ``qa.cpu_share``."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.own = 5.0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cpu_share.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(cpu_share.time, "process_time", lambda: self.own)


def _write_stat(path: Path, busy_s: float, idle_s: float) -> None:
    """A ``/proc/stat`` whose busy time is split over user and system, idle over idle and
    iowait (which must not count as busy)."""
    user, system = int(busy_s * TICKS * 0.75), int(busy_s * TICKS * 0.25)
    idle, iowait = int(idle_s * TICKS * 0.9), int(idle_s * TICKS * 0.1)
    path.write_text(f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n")


def test_others_share_leaves_out_this_process_and_idle_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, stat = _Clock(), tmp_path / "stat"
    clock.install(monkeypatch)
    _write_stat(stat, busy_s=1000, idle_s=4000)
    share = CpuShare(window_s=0.2, stat_path=stat)
    assert share.available
    # One second later: 1.6 CPU-seconds busy in all, 0.6 of them this process's own.
    clock.wall += 1.0
    clock.own += 0.6
    _write_stat(stat, busy_s=1001.6, idle_s=4000.4)
    assert share.others_busy() == pytest.approx(1.0, abs=0.05)


def test_the_share_is_kept_within_a_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, stat = _Clock(), tmp_path / "stat"
    clock.install(monkeypatch)
    _write_stat(stat, busy_s=1000, idle_s=4000)
    share = CpuShare(window_s=0.2, stat_path=stat)
    clock.wall += 0.5
    _write_stat(stat, busy_s=1000.5, idle_s=4000.5)
    assert share.others_busy() == pytest.approx(1.0, abs=0.05)
    clock.wall += 0.1  # under the window: ticks of 10 ms would say little, the figure is kept
    _write_stat(stat, busy_s=1000.5, idle_s=4000.7)
    assert share.others_busy() == pytest.approx(1.0, abs=0.05)
    clock.wall += 0.4  # past it: the machine went quiet
    _write_stat(stat, busy_s=1000.5, idle_s=4001.5)
    assert share.others_busy() == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("content", [None, "", "intr 1 2 3\n", "cpu  1 2\n"])
def test_an_unreadable_stat_means_unknown_not_an_error(tmp_path: Path, content: str | None) -> None:
    stat = tmp_path / "stat"
    if content is not None:
        stat.write_text(content)
    share = CpuShare(stat_path=stat)
    assert not share.available
    assert share.others_busy() == 0.0


class _FixedShare:
    available = True

    def __init__(self, busy: float) -> None:
        self.busy = busy

    def others_busy(self) -> float:
        return self.busy


@pytest.mark.parametrize(
    ("cpus", "most", "busy", "threads"),
    [(2, 2, 0.0, 2), (2, 2, 0.4, 2), (2, 2, 0.6, 1), (2, 2, 1.0, 1), (2, 2, 7.0, 1),
     (8, 4, 2.0, 4), (8, 8, 2.0, 6), (8, 8, 3.5, 5)],
)  # fmt: skip
def test_threads_are_the_cpus_others_leave_free(
    cpus: int, most: int, busy: float, threads: int
) -> None:
    fitter = ThreadFitter(most, cpus=cpus, share=_FixedShare(busy))  # type: ignore[arg-type]
    assert fitter.threads_now() == threads


@pytest.mark.parametrize(
    ("cpus", "most", "busy", "sharing", "threads"),
    [(2, 2, 0.0, 1, 2), (2, 2, 0.0, 2, 1), (2, 2, 0.0, 8, 1), (2, 2, 1.0, 2, 1),
     (8, 8, 0.0, 2, 4), (8, 8, 0.0, 3, 3), (8, 8, 2.0, 2, 3), (8, 4, 0.0, 1, 4)],
)  # fmt: skip
def test_the_free_cpus_are_shared_among_the_questions_computed_at_once(
    cpus: int, most: int, busy: float, sharing: int, threads: int
) -> None:
    fitter = ThreadFitter(most, cpus=cpus, share=_FixedShare(busy))  # type: ignore[arg-type]
    assert fitter.threads_now(sharing) == threads


def test_fit_sets_the_calling_threads_torch_count() -> None:
    torch = pytest.importorskip("torch")
    share = _FixedShare(1.0)
    fitter = ThreadFitter(2, cpus=2, share=share)  # type: ignore[arg-type]
    seen: list[int] = []

    def compute() -> None:  # on a thread of its own, as the micro-batcher's
        seen.append(fitter.fit())
        seen.append(torch.get_num_threads())
        share.busy = 0.0
        seen.append(fitter.fit())
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=compute)
    worker.start()
    worker.join()
    assert seen == [1, 1, 2, 2]


class _RecordingFitter:
    def __init__(self) -> None:
        self.threads: list[int] = []
        self.sharing: list[int] = []

    def fit(self, sharing: int = 1) -> int:
        self.threads.append(threading.get_ident())
        self.sharing.append(sharing)
        return 1


@pytest.mark.parametrize("micro_batch", [1, 8])
def test_the_pipeline_fits_threads_on_the_computing_thread(
    passages: list, micro_batch: int
) -> None:
    fitter = _RecordingFitter()
    computed: list[int] = []
    retriever = Retriever(FakeEncoder(), passages).build()
    search = retriever.search

    def recorded_search(*args, **kwargs):
        computed.append(threading.get_ident())
        return search(*args, **kwargs)

    retriever.search = recorded_search  # type: ignore[method-assign]
    pipeline = Pipeline(
        retriever=retriever, reader=SentenceReader(), micro_batch=micro_batch,
        threads=fitter,  # type: ignore[arg-type]
    )  # fmt: skip
    for question in ("公司的营业收入是多少？", "When does the library open?"):
        pipeline.ask(question)
    assert fitter.threads == computed and len(computed) == 2
    assert fitter.sharing == [1, 1]  # one question at a time: nothing to share
    assert pipeline.fit_threads() == 1
    assert Pipeline(retriever=retriever, reader=SentenceReader()).fit_threads() == 0


@pytest.mark.parametrize(("policy", "fits"), [("adaptive", True), ("passive", False), ("", False)])
def test_only_the_adaptive_policy_fits_threads(policy: str, fits: bool) -> None:
    pytest.importorskip("torch")
    fitter = thread_fitter(Settings(omp_wait_policy=policy, torch_threads=2))
    assert (fitter is not None) == (fits and CpuShare().available)
    if fitter is not None:
        assert fitter.most == 2


def test_adaptive_is_the_default_policy() -> None:
    assert Settings().omp_wait_policy == "adaptive"


def test_questions_computed_at_once_share_the_cpus(passages: list) -> None:
    """Two questions computed at the same moment (the second in its caller's thread) each
    fit for two sharing: on 2 cores one thread each, no OpenMP team for the caller's thread."""
    fitter = _RecordingFitter()
    both_reading = threading.Barrier(2)

    class MeetingReader(SentenceReader):
        def read(self, question, passages, top_k=1):
            both_reading.wait(timeout=10)
            return super().read(question, passages, top_k=top_k)

    retriever = Retriever(FakeEncoder(), passages).build()
    pipeline = Pipeline(
        retriever=retriever, reader=MeetingReader(), compute_thread=True,
        threads=fitter,  # type: ignore[arg-type]
    )  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(pipeline.ask, ("公司的营业收入是多少？", "When does the library open?")))
    # The first fitted alone or once the second had been counted; the second always shared.
    assert max(fitter.sharing) == 2 and fitter.sharing.count(2) >= 1
    assert len(set(fitter.threads)) == 2


def test_a_micro_batch_fits_as_one_computation(passages: list) -> None:
    """Questions waiting for the batcher are one batch, not rivals for the CPUs."""
    fitter = _RecordingFitter()
    retriever = Retriever(FakeEncoder(), passages).build()
    pipeline = Pipeline(
        retriever=retriever, reader=SentenceReader(), micro_batch=8,
        threads=fitter,  # type: ignore[arg-type]
    )  # fmt: skip
    questions = ("公司的营业收入是多少？", "When does the library open?") * 3
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(pipeline.ask, questions))
    assert fitter.sharing and set(fitter.sharing) == {1}
