"""Micro-batching (``qa.batching``, issue #14): questions that arrive together are answered in
one pass, and every caller still gets the answer to its own question.

The batcher is checked on its own (random interleavings of callers, a failing item, a lone
caller, the idle worker), then the pipeline with the neural reader (a small random model, fp32):
random interleavings of questions through ``Pipeline.ask`` from several threads must give each
question the answers it gets asked alone, with and without the reader's early exit.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FakeEncoder

from qa.batching import MicroBatcher
from qa.pipeline import Pipeline
from qa.readers import TransformerReader
from qa.retrieval import Retriever

QUESTIONS = (
    "公司的营业收入是多少？",
    "工作满十年的员工可以休假几天？",
    "谁负责推进数字化转型？",
    "When does the library open?",
    "What must visitors wear?",
    "净利润怎么样？",
    "各部门多久报送一次进展？",
    "Where do visitors register?",
)


def _interleaved(submit, items: list, seed: int) -> dict:
    """``submit(item)`` for every item from 1–8 threads, in a random order, with random gaps."""
    rng = random.Random(seed)
    order = items[:]
    rng.shuffle(order)
    gaps = {id(item): rng.choice([0.0, 0.0, 0.0005, 0.002, 0.01]) for item in order}

    def one(item):
        time.sleep(gaps[id(item)])
        return item, submit(item)

    with ThreadPoolExecutor(max_workers=rng.randint(1, 8)) as pool:
        return dict(pool.map(one, order))


# -- the batcher alone --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_every_caller_gets_its_own_result(seed: int) -> None:
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(0.003)  # long enough for others to queue behind a running batch
        return [item * item for item in items]

    batcher = MicroBatcher(run, max_batch=4, window_ms=2.0)
    results = _interleaved(lambda item: batcher.submit(item)[0], list(range(40)), seed)
    assert results == {item: item * item for item in range(40)}
    assert sorted(item for batch in batches for item in batch) == list(range(40))
    assert max(len(batch) for batch in batches) <= 4
    assert batcher.items == 40


def test_callers_that_wait_together_share_a_batch() -> None:
    started = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        started.wait(5)  # the first batch holds the worker until everyone has queued
        return items

    batcher = MicroBatcher(run, max_batch=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        # The first caller reaches the worker alone; only then do the other seven queue (all at
        # once, they could race it there and make the first batch two).
        futures = [pool.submit(batcher.submit, 0)]
        deadline = time.monotonic() + 5
        while not sizes and time.monotonic() < deadline:
            time.sleep(0.005)
        futures += [pool.submit(batcher.submit, i) for i in range(1, 8)]
        while len(batcher._pending) < 7 and time.monotonic() < deadline:
            time.sleep(0.005)
        started.set()
        assert [f.result()[0] for f in futures] == list(range(8))
    assert sizes == [1, 7]


def test_a_failing_item_fails_alone() -> None:
    def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("13 is refused")
        return [-item for item in items]

    batcher = MicroBatcher(run, max_batch=8, window_ms=5.0)

    def submit(item: int):
        try:
            return batcher.submit(item)[0]
        except ValueError as exc:
            return str(exc)

    results = _interleaved(submit, list(range(20)), seed=3)
    assert results[13] == "13 is refused"
    assert all(results[i] == -i for i in range(20) if i != 13)


def test_a_lone_question_does_not_wait_for_the_window() -> None:
    batcher = MicroBatcher(lambda items: items, max_batch=8, window_ms=2000.0)
    started = time.perf_counter()
    for i in range(3):
        assert batcher.submit(i)[0] == i
    assert time.perf_counter() - started < 1.0  # not 3 × 2 s


def test_a_wrong_number_of_results_is_an_error_not_a_mixup() -> None:
    batcher = MicroBatcher(lambda items: items[:1], max_batch=8)
    assert batcher.submit("alone")[0] == "alone"
    results = _interleaved(lambda item: _result_or_error(batcher, item), ["a", "b", "c", "d"], 1)
    assert results == {"a": "a", "b": "b", "c": "c", "d": "d"}  # retried one by one


def _result_or_error(batcher: MicroBatcher, item: str) -> str:
    try:
        return batcher.submit(item)[0]
    except RuntimeError as exc:
        return str(exc)


def test_the_idle_worker_stops_and_comes_back() -> None:
    batcher = MicroBatcher(lambda items: items, idle_s=0.05)
    assert batcher.submit(1)[0] == 1
    deadline = time.monotonic() + 5
    while batcher._worker is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher._worker is None  # no thread left behind (a replaced pipeline's batcher)
    assert batcher.submit(2)[0] == 2


@pytest.mark.parametrize("options", [{"max_batch": 0}, {"window_ms": -1.0}])
def test_bad_settings_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, **options)


# -- the pipeline with the neural reader --------------------------------------------------------


def _answers(response) -> tuple:
    return (
        response.no_answer,
        [h.passage.id for h in response.hits],
        [(a.text, a.passage.id, round(a.score, 4)) for a in response.answers],
    )


@pytest.mark.parametrize("early_exit", [None, "median"])
def test_batched_answers_are_the_answers_alone(
    qa_model_dir: Path, passages: list, early_exit: str | None
) -> None:
    retriever = Retriever(FakeEncoder(), passages).build()
    reader = TransformerReader(str(qa_model_dir), precision="fp32")
    alone_pipeline = Pipeline(retriever=retriever, reader=reader, top_k=4, reader_top_k=3)
    alone = {q: alone_pipeline.ask(q) for q in QUESTIONS}
    if early_exit == "median":  # about half the questions stop after their first passage
        scores = sorted(r.answers[0].score for r in alone.values() if r.answers)
        reader = TransformerReader(
            str(qa_model_dir), precision="fp32", early_exit=scores[len(scores) // 2]
        )
        alone_pipeline = Pipeline(retriever=retriever, reader=reader, top_k=4, reader_top_k=3)
        alone = {q: alone_pipeline.ask(q) for q in QUESTIONS}
    batched = Pipeline(
        retriever=retriever, reader=reader, top_k=4, reader_top_k=3, micro_batch=8,
        micro_batch_window_ms=3.0,
    )  # fmt: skip
    assert batched.batcher is not None
    for seed in range(5):
        asked = list(QUESTIONS) * 2
        got = _interleaved(lambda item: (item, batched.ask(item[1])), list(enumerate(asked)), seed)
        for (_, question), (_, response) in got.items():
            assert response.question == question
            assert _answers(response) == _answers(alone[question]), (seed, question)
            assert response.timings_ms["total"] >= response.timings_ms["queue"] >= 0
    assert batched.batcher.batches < batched.batcher.items  # some questions did share a pass


def test_the_reader_reads_many_as_it_reads_one(qa_model_dir: Path, passages: list) -> None:
    reader = TransformerReader(str(qa_model_dir), precision="fp32", max_passages=2)
    requests = [(q, passages[i % 3 :], 1 + i % 3) for i, q in enumerate(QUESTIONS)]
    requests.append(("没有段落的问题？", [], 3))
    together = reader.read_many(requests)
    for (question, given, top_k), reading in zip(requests, together, strict=True):
        alone = reader.read(question, given, top_k=top_k)
        assert [(a.text, a.passage.id) for a in reading.answers] == [
            (a.text, a.passage.id) for a in alone.answers
        ]
        assert reading.no_answer == alone.no_answer
        assert reading.best_score == pytest.approx(alone.best_score, abs=1e-5)
    assert together[-1].answers == [] and together[-1].no_answer


def _recording_pipeline(passages: list, hold: threading.Event | None = None, **options):
    """A pipeline whose searches record the thread they run on (and wait for ``hold``)."""
    from qa.readers.sentence import SentenceReader

    retriever = Retriever(FakeEncoder(), passages).build()
    search = retriever.search
    computing: list[int] = []

    def recorded(*args, **kwargs):
        computing.append(threading.get_ident())
        if hold is not None and len(computing) == 1:
            hold.wait(timeout=10)
        return search(*args, **kwargs)

    retriever.search = recorded  # type: ignore[method-assign]
    return Pipeline(retriever=retriever, reader=SentenceReader(), **options), computing


def test_a_compute_thread_pipeline_computes_lone_questions_on_one_thread(
    passages: list,
) -> None:
    """``compute_thread``: questions asked one at a time from many threads are all computed on
    one thread (not theirs), so a server keeps one OpenMP team (``Pipeline.compute_thread``)."""
    pipeline, computing = _recording_pipeline(passages, compute_thread=True)
    alone, _ = _recording_pipeline(passages)
    pools = [ThreadPoolExecutor(1) for _ in range(4)]
    callers = {pool.submit(threading.get_ident).result() for pool in pools}
    got = [pools[i % 4].submit(pipeline.ask, q).result() for i, q in enumerate(QUESTIONS)]
    for pool in pools:
        pool.shutdown()
    assert [_answers(r) for r in got] == [_answers(alone.ask(q)) for q in QUESTIONS]
    assert len(computing) == len(QUESTIONS) and len(set(computing)) == 1
    assert not set(computing) & callers
    assert pipeline.batcher is not None and pipeline.batcher.max_batch == 1
    assert alone.batcher is None  # the CLI's pipeline computes in the caller's thread


def test_a_question_asked_while_another_computes_runs_in_its_callers_thread(
    passages: list,
) -> None:
    """Queueing every question behind the compute thread lost answers/s under load, so a
    second question at the same moment is computed where it is asked, beside the first."""
    hold = threading.Event()
    pipeline, computing = _recording_pipeline(passages, hold, compute_thread=True)
    with ThreadPoolExecutor(1) as first_caller:
        first = first_caller.submit(pipeline.ask, QUESTIONS[0])
        deadline = time.monotonic() + 10
        while not computing and time.monotonic() < deadline:
            time.sleep(0.01)
        second = pipeline.ask(QUESTIONS[1])  # the first is still being computed
        hold.set()
        first.result(timeout=10)
    assert computing[1] == threading.get_ident() and computing[0] != computing[1]
    assert second.question == QUESTIONS[1]
    assert pipeline._computing == 0
