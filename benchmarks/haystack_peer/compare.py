"""Both systems on one corpus: build each index, then ask every question to both in turn.

Fairness rules this module keeps:

- one passage list: Haystack's document store receives Ludao's passages (same ids and text), so
  recall compares retrieval and not chunking;
- one machine, one time: the Haystack process waits on its pipe while Ludao answers and the other
  way round, and the order flips every question, so a burst of load from elsewhere on a shared
  machine hits both systems alike;
- one scorer: recall@5 uses ``has_relevant_passage`` and EM/F1 use ``score_answer`` (the
  metric of the question's language), exactly as ``ludao eval`` does, for both systems' answers.

Latencies are taken inside each process around one whole question (Ludao's ``Pipeline.ask``,
Haystack's ``Pipeline.run``); index build times are measured separately and never mixed in.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from qa.eval.latency import latency_summary as summarise_latency
from qa.eval.latency import percentile
from qa.eval.metrics import has_relevant_passage, score_answer
from qa.eval.question_files import QAExample

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("runner.py")
HAYSTACK_VARIANTS = ("dense_only", "bm25_only", "bm25_only_legacy_regex", "hybrid_legacy_regex")


class RunnerError(RuntimeError):
    """The Haystack process failed or answered something unexpected."""


@dataclass(frozen=True)
class Answered:
    """One system's answer to one question, in the shape both systems are scored from."""

    id: str
    latency_ms: float
    retrieved: list[str]
    best_span: str
    """The best span even where the system declined to answer ('' if it found none)."""
    prediction: str
    """The answer as shown to a user: '' when the system declines (no-answer)."""


@dataclass
class SystemScores:
    n: int
    latency_ms: dict[str, float]
    recall_at_5: float | None
    exact_match: float
    f1: float
    exact_match_best_span: float
    f1_best_span: float
    no_answer_count: int
    index_build_s: float
    models_load_s: float


@dataclass
class CorpusResult:
    """Everything measured on one corpus; ``to_dict`` is what goes into the JSON report."""

    name: str
    passages: int
    questions: int
    answerable: int
    systems: dict[str, SystemScores]
    latency_ratio: dict[str, float]
    retrieval_variants: dict[str, dict[str, float | None]]
    haystack_config: dict[str, Any]
    load_average: dict[str, list[float]]
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("predictions")
        return data


# --- Ludao ---------------------------------------------------------------------------------


@dataclass
class LudaoSide:
    pipeline: Any
    index_build_s: float
    models_load_s: float

    @property
    def passages(self) -> list[Any]:
        return list(self.pipeline.retriever.passages)

    def ask(self, example: QAExample, top_k: int) -> Answered:
        t0 = time.perf_counter()
        response = self.pipeline.ask(example.question, top_k=top_k)
        latency = (time.perf_counter() - t0) * 1000
        best = response.answers[0].text if response.answers else ""
        return Answered(
            id=example.id,
            latency_ms=latency,
            retrieved=[h.passage.id for h in response.hits],
            best_span=best,
            prediction="" if response.no_answer else best,
        )

    def variant(self, name: str, question: str, top_k: int) -> list[str]:
        retriever = self.pipeline.retriever
        ranking = (
            retriever.dense_ranking(question, top_k)
            if name == "dense_only"
            else retriever.sparse_ranking(question, top_k)
        )
        return [retriever.passages[i].id for i in ranking]


def build_ludao(make_pipeline: Any) -> LudaoSide:
    """Build Ludao's index (timed) and load its reader (timed apart)."""
    t0 = time.perf_counter()
    pipeline = make_pipeline()
    build_s = time.perf_counter() - t0
    if getattr(pipeline, "cache_size", 0):
        # The answer cache would make the warm-up questions free when asked again; Haystack has
        # none, so both systems answer every question from scratch.
        pipeline = replace(pipeline, cache_size=0)
    t1 = time.perf_counter()
    warm_up = getattr(pipeline.reader, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return LudaoSide(pipeline, build_s, time.perf_counter() - t1)


# --- Haystack ------------------------------------------------------------------------------


class HaystackProcess:
    """The runner in the Haystack venv, spoken to one JSON line at a time."""

    def __init__(self, python: Path, spec_file: Path, log_file: Path, threads: int) -> None:
        env = {
            **os.environ,
            "HAYSTACK_TELEMETRY_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
        env.pop("PYTHONPATH", None)  # nothing of Ludao's venv may leak into Haystack's
        self.log_file = log_file
        self._log: IO[str] = log_file.open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            [str(python), str(RUNNER), "--spec", str(spec_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self.ready = self._read()
        if self.ready.get("event") != "ready":
            raise RunnerError(f"Haystack runner did not start: {self.ready}")

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=30)
            tail = self.log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RunnerError(
                f"Haystack runner exited ({self._process.returncode}); log tail:\n{tail}"
            )
        return json.loads(line)

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(payload, ensure_ascii=False) + "\n")
        self._process.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RunnerError(f"Haystack runner: {reply['error']} (see {self.log_file})")
        return reply

    def ask(self, example: QAExample) -> Answered:
        reply = self.request({"op": "ask", "id": example.id, "question": example.question})
        answers = reply["answers"]
        spans = [a["text"] for a in answers if a["text"] is not None]
        top = answers[0]["text"] if answers else None
        return Answered(
            id=example.id,
            latency_ms=float(reply["latency_ms"]),
            retrieved=list(reply["retrieved"]),
            best_span=spans[0] if spans else "",
            prediction=top or "",  # None: the no-answer entry ranked first
        )

    def variant(self, name: str, question: str) -> list[str]:
        return self.request({"op": "retrieve", "id": name, "variant": name, "question": question})[
            "retrieved"
        ]

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.close()
                self._process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._log.close()


def write_spec(
    path: Path,
    passages: Sequence[Any],
    *,
    embedding_model: str,
    reader_model: Path,
    threads: int,
    candidates: int,
    top_k: int,
    precision: str = "fp32",
) -> Path:
    spec = {
        "precision": precision,
        "embedding_model": embedding_model,
        "reader_model": str(reader_model),
        "threads": threads,
        "candidates": candidates,
        "top_k": top_k,
        "passages": [{"id": p.id, "text": p.text} for p in passages],
    }
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


# --- scoring -------------------------------------------------------------------------------


def recall_at_5(
    examples: Sequence[QAExample], retrieved: Sequence[list[str]], texts: dict[str, str]
) -> float | None:
    """Share of answerable questions with a gold answer inside one of the first 5 passages."""
    pairs = [(ex, ids) for ex, ids in zip(examples, retrieved, strict=True) if ex.answers]
    if not pairs:
        return None
    return sum(
        has_relevant_passage(ex.answers, (texts[pid] for pid in ids), k=5) for ex, ids in pairs
    ) / len(pairs)


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    return summarise_latency(values, digits=1)


def score(
    examples: Sequence[QAExample],
    answered: Sequence[Answered],
    texts: dict[str, str],
    *,
    index_build_s: float,
    models_load_s: float,
) -> SystemScores:
    """Score one system's answers with Ludao's metrics (percentages, like ``ludao eval``)."""
    n = len(examples)
    em = f1s = em_span = f1_span = 0.0
    for ex, ans in zip(examples, answered, strict=True):
        shown = score_answer(ans.prediction, ex.answers, question=ex.question)
        span = score_answer(ans.best_span, ex.answers, question=ex.question)
        em += shown.exact_match
        f1s += shown.f1
        em_span += span.exact_match
        f1_span += span.f1
    recall = recall_at_5(examples, [a.retrieved for a in answered], texts)
    return SystemScores(
        n=n,
        latency_ms=latency_summary([a.latency_ms for a in answered]),
        recall_at_5=None if recall is None else round(100 * recall, 2),
        exact_match=round(100 * em / n, 2),
        f1=round(100 * f1s / n, 2),
        exact_match_best_span=round(100 * em_span / n, 2),
        f1_best_span=round(100 * f1_span / n, 2),
        no_answer_count=sum(1 for a in answered if not a.prediction),
        index_build_s=round(index_build_s, 2),
        models_load_s=round(models_load_s, 2),
    )


def latency_ratio(ludao: Sequence[Answered], haystack: Sequence[Answered]) -> dict[str, float]:
    """Haystack time over Ludao time: of the medians, of the means, and per question."""
    lu = [a.latency_ms for a in ludao]
    hs = [a.latency_ms for a in haystack]
    paired = [h / max(u, 1e-6) for u, h in zip(lu, hs, strict=True)]
    return {
        "p50": round(percentile(hs, 50) / percentile(lu, 50), 2),
        "mean": round(sum(hs) / sum(lu), 2),
        "median_of_per_question": round(percentile(paired, 50), 2),
    }


# --- the run -------------------------------------------------------------------------------


def run_corpus(
    name: str,
    examples: Sequence[QAExample],
    ludao: LudaoSide,
    haystack: HaystackProcess,
    *,
    warmup: int,
    top_k: int,
) -> CorpusResult:
    """Warm both systems up, then ask each question to both, flipping the order every time."""
    texts = {p.id: p.text for p in ludao.passages}
    load_start = list(os.getloadavg())
    for ex in examples[:warmup]:
        ludao.ask(ex, top_k)
        haystack.ask(ex)
    lu_answers: list[Answered] = []
    hs_answers: list[Answered] = []
    for i, ex in enumerate(examples):
        if i % 2 == 0:
            lu_answers.append(ludao.ask(ex, top_k))
            hs_answers.append(haystack.ask(ex))
        else:
            hs_answers.append(haystack.ask(ex))
            lu_answers.append(ludao.ask(ex, top_k))
        if (i + 1) % 25 == 0:
            logger.info("%s: %d/%d questions", name, i + 1, len(examples))
    load_end = list(os.getloadavg())
    variants = _retrieval_variants(examples, ludao, haystack, texts, top_k)
    systems = {
        "ludao": score(
            examples,
            lu_answers,
            texts,
            index_build_s=ludao.index_build_s,
            models_load_s=ludao.models_load_s,
        ),
        "haystack": score(
            examples,
            hs_answers,
            texts,
            index_build_s=float(haystack.ready["index_build_s"]),
            models_load_s=float(haystack.ready["models_load_s"]),
        ),
    }
    predictions = [
        {
            "corpus": name,
            "id": ex.id,
            "question": ex.question,
            "gold": list(ex.answers),
            "ludao": asdict(lu),
            "haystack": asdict(hs),
        }
        for ex, lu, hs in zip(examples, lu_answers, hs_answers, strict=True)
    ]
    return CorpusResult(
        name=name,
        passages=len(texts),
        questions=len(examples),
        answerable=sum(1 for ex in examples if ex.answers),
        systems=systems,
        latency_ratio=latency_ratio(lu_answers, hs_answers),
        retrieval_variants=variants,
        haystack_config=haystack.ready,
        load_average={"start": load_start, "end": load_end},
        predictions=predictions,
    )


def _retrieval_variants(
    examples: Sequence[QAExample],
    ludao: LudaoSide,
    haystack: HaystackProcess,
    texts: dict[str, str],
    top_k: int,
) -> dict[str, dict[str, float | None]]:
    """Recall@5 of single-retriever and re-tokenised variants (not timed, no reader)."""
    recall: dict[str, dict[str, float | None]] = {"ludao": {}, "haystack": {}}
    for name in ("dense_only", "bm25_only"):
        found = [ludao.variant(name, ex.question, top_k) for ex in examples]
        value = recall_at_5(examples, found, texts)
        recall["ludao"][name] = None if value is None else round(100 * value, 2)
    for name in HAYSTACK_VARIANTS:
        found = [haystack.variant(name, ex.question) for ex in examples]
        value = recall_at_5(examples, found, texts)
        recall["haystack"][name] = None if value is None else round(100 * value, 2)
    return recall
