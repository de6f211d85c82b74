"""Running a question set through Ludao and summarising how it did (``ludao eval``).

Three settings, as design.md's contract has them:

- gold passage: each question is read against its own paragraph only (reader quality alone);
- open domain over a SQuAD file's own paragraphs: every paragraph is one passage in one index
  (``squad_paragraph_pipeline``, shared with the Haystack comparison in ``benchmarks/``);
- a JSONL question file against a knowledge base (the default corpus unless told otherwise).

Scores use the metrics of ``qa.eval.metrics``. Predictions honour the reader's no-answer decision;
``*_forced`` scores take the best span even where the reader declined, which is how published
CMRC/SQuAD v1 numbers (no unanswerable questions) are computed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from ..conversation import Turn, ask_options, fill_answers
from ..readers import Reader
from ..schema import Hit, Passage
from .latency import percentile
from .metrics import is_boundary_error, relevant_rank, score_answer
from .question_files import QAExample, load_squad_paragraphs

if TYPE_CHECKING:
    from ..config import Settings
    from ..pipeline import Pipeline

__all__ = [
    "AskFn",
    "EvalReport",
    "Prediction",
    "evaluate",
    "gold_passage_asker",
    "pipeline_asker",
    "squad_paragraph_pipeline",
    "write_predictions",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    id: str
    question: str
    prediction: str
    best_span: str
    score: float
    passage_id: str | None
    no_answer: bool
    gold: tuple[str, ...]
    retrieved: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    interpreted_as: str | None = None

    def record(self) -> dict:
        """The ``--predictions`` line of the contract (plus gold answers, for reading failures)."""
        return {
            "id": self.id,
            "question": self.question,
            "prediction": self.prediction,
            "score": round(self.score, 4),
            "passage_id": self.passage_id,
            "no_answer": self.no_answer,
            "gold": list(self.gold),
            "interpreted_as": self.interpreted_as,
        }


@dataclass
class EvalReport:
    n: int
    exact_match: float
    f1: float
    exact_match_forced: float
    f1_forced: float
    no_answer_accuracy: float
    recall_at_1: float | None
    recall_at_5: float | None
    mrr: float | None
    latency_p50: float
    latency_p95: float
    boundary_error_share: float | None
    """Of the answerable questions whose best span is not exact, the share where it contains
    the gold answer or lies inside it (``metrics.is_boundary_error``)."""
    reader: str
    embedding_model: str | None
    mode: str
    followups: int = 0
    """Questions asked after a ``history`` (follow-ups)."""
    rewritten: float | None = None
    """Share of those follow-ups the resolver rebuilt (``None`` without any)."""

    def to_dict(self) -> dict:
        def pct(x: float | None) -> float | None:
            return None if x is None else round(100 * x, 2)

        return {
            "n": self.n,
            "exact_match": pct(self.exact_match),
            "f1": pct(self.f1),
            "exact_match_forced": pct(self.exact_match_forced),
            "f1_forced": pct(self.f1_forced),
            "no_answer_accuracy": pct(self.no_answer_accuracy),
            "recall@1": pct(self.recall_at_1),
            "recall@5": pct(self.recall_at_5),
            "mrr": None if self.mrr is None else round(self.mrr, 4),
            "latency_ms": {"p50": round(self.latency_p50, 1), "p95": round(self.latency_p95, 1)},
            "boundary_error_share": pct(self.boundary_error_share),
            "reader": self.reader,
            "embedding_model": self.embedding_model,
            "mode": self.mode,
            "followups": self.followups,
            "rewritten": pct(self.rewritten),
        }


AskFn = Callable[[QAExample], tuple[list[Hit], object]]


def gold_passage_asker(reader: Reader, top_k: int = 3) -> AskFn:
    """Read each question against its own paragraph only."""

    def ask(example: QAExample):
        if example.context is None:
            raise ValueError(f"question {example.id} has no paragraph; gold-passage mode needs one")
        passage = Passage(
            id=f"gold:{example.id}",
            doc_id="gold",
            title=example.title,
            text=example.context,
            start=0,
            end=len(example.context),
        )
        return [Hit(passage=passage, score=1.0)], reader.read(example.question, [passage], top_k)

    return ask


def pipeline_asker(pipeline, top_k: int = 5) -> AskFn:
    """Ask through the whole pipeline (retrieval, then reading)."""

    def ask_turn(question: str, earlier: list[Turn]):
        return pipeline.ask(question, top_k=top_k, **ask_options(earlier))

    def ask(example: QAExample):
        # Earlier turns get the answers the pipeline gives them, as in a chat; then the turn.
        earlier = fill_answers(example.history, ask_turn) if example.history else []
        response = ask_turn(example.question, earlier)
        return response.hits, response

    return ask


def squad_paragraph_pipeline(path: Path, settings: Settings) -> Pipeline:
    """A pipeline whose corpus is the SQuAD file's own paragraphs, one passage each.

    The index is saved under ``settings.home_dir`` like any corpus's, keyed by the file, so a
    second evaluation of the same file reuses it.
    """
    from ..corpus import Corpus
    from ..index import locate_index, update_index
    from ..pipeline import Pipeline
    from ..readers import reader_from_settings

    passages = [
        Passage(id=pid, doc_id=pid, title=path.stem, text=text, start=0, end=len(text))
        for pid, text in load_squad_paragraphs(path)
    ]
    where = locate_index(settings, [path])
    corpus = Corpus(documents=[], passages=passages)
    retriever = update_index(corpus, where.encoder, where.index_dir).retriever
    return Pipeline(
        retriever=retriever,
        reader=reader_from_settings(settings),
        top_k=settings.top_k,
        reader_top_k=settings.reader_top_k,
        description={"corpus": [str(path)], "passages": len(passages)},
    )


def evaluate(
    examples: Iterable[QAExample],
    ask: AskFn,
    *,
    reader_name: str,
    embedding_model: str | None,
    mode: str,
    with_retrieval: bool,
) -> tuple[EvalReport, list[Prediction]]:
    """Ask every question, score answers and (when retrieval ran) recall@k and MRR."""
    examples = list(examples)
    predictions: list[Prediction] = []
    em = f1s = em_forced = f1_forced = na_correct = 0.0
    r1 = r5 = rr = 0.0
    answerable = 0
    wrong = boundary = 0  # best spans of answerable questions that are not exact
    latencies: list[float] = []
    followups = rewritten = 0
    show = logger.isEnabledFor(logging.INFO)
    for ex in tqdm(examples, desc=f"eval ({mode})", disable=not show):
        t0 = time.perf_counter()
        hits, reading = ask(ex)
        latency = (time.perf_counter() - t0) * 1000
        latencies.append(latency)
        answers = reading.answers
        interpreted = getattr(reading, "interpreted_as", None)
        followups += bool(ex.history)
        rewritten += bool(ex.history and interpreted)
        best = answers[0] if answers else None
        best_text = best.text if best else ""
        prediction = "" if reading.no_answer else best_text
        shown = score_answer(prediction, ex.answers, question=ex.question)
        forced = score_answer(best_text, ex.answers, question=ex.question)
        em += shown.exact_match
        f1s += shown.f1
        em_forced += forced.exact_match
        f1_forced += forced.f1
        na_correct += float(bool(ex.answers) != reading.no_answer)
        if ex.answers and not forced.exact_match:
            wrong += 1
            boundary += is_boundary_error(best_text, ex.answers, question=ex.question)
        if ex.answers and with_retrieval:
            answerable += 1
            rank = relevant_rank(ex.answers, (h.passage.text for h in hits))
            if rank is not None:
                r1 += rank <= 1
                r5 += rank <= 5
                rr += 1.0 / rank
        predictions.append(
            Prediction(
                id=ex.id,
                question=ex.question,
                prediction=prediction,
                best_span=best_text,
                score=best.score if best else 0.0,
                passage_id=best.passage.id if best else None,
                no_answer=reading.no_answer,
                gold=ex.answers,
                retrieved=[h.passage.id for h in hits],
                latency_ms=latency,
                interpreted_as=interpreted,
            )
        )
    n = max(len(examples), 1)
    retrieval = with_retrieval and answerable > 0
    report = EvalReport(
        n=len(examples),
        exact_match=em / n,
        f1=f1s / n,
        exact_match_forced=em_forced / n,
        f1_forced=f1_forced / n,
        no_answer_accuracy=na_correct / n,
        recall_at_1=r1 / answerable if retrieval else None,
        recall_at_5=r5 / answerable if retrieval else None,
        mrr=rr / answerable if retrieval else None,
        latency_p50=percentile(latencies, 50) if latencies else 0.0,
        latency_p95=percentile(latencies, 95) if latencies else 0.0,
        boundary_error_share=boundary / wrong if wrong else None,
        reader=reader_name,
        embedding_model=embedding_model,
        mode=mode,
        followups=followups,
        rewritten=rewritten / followups if followups else None,
    )
    return report, predictions


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """One ``--predictions`` line per question, UTF-8 and unescaped so failures can be read."""
    with path.open("w", encoding="utf-8") as fh:
        for p in predictions:
            fh.write(json.dumps(p.record(), ensure_ascii=False) + "\n")
