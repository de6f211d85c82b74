"""How well Ludao answers, and how fast: the scoring behind ``ludao eval`` and ``ludao bench``.

- ``metrics``: CMRC 2018 / SQuAD exact match and F1, picked by the question's language
  (``score_answer``), and whether a gold answer was retrieved (``relevant_rank``);
- ``question_files``: SQuAD-format JSON and JSONL question files (``load_examples``);
- ``runner``: asking a question set and summarising it (``evaluate`` → ``EvalReport``);
- ``latency``: percentiles and the latency summary every report uses;
- ``bench`` and ``limit``: the per-stage timings of ``ludao bench`` and the machine's fp32 limit.

The benchmarks in ``benchmarks/`` import these instead of scoring answers their own way, so that
every number in a report is computed like ``ludao eval`` computes it.
"""

from __future__ import annotations

from .latency import latency_summary, percentile
from .metrics import (
    AnswerScore,
    answer_in_text,
    detect_language,
    exact_match,
    f1,
    has_relevant_passage,
    relevant_rank,
    score_answer,
)
from .question_files import SEED_QUESTIONS, QAExample, load_examples, load_squad_paragraphs
from .runner import (
    EvalReport,
    Prediction,
    evaluate,
    gold_passage_asker,
    pipeline_asker,
    squad_paragraph_pipeline,
    write_predictions,
)

__all__ = [
    "SEED_QUESTIONS",
    "AnswerScore",
    "EvalReport",
    "Prediction",
    "QAExample",
    "answer_in_text",
    "detect_language",
    "evaluate",
    "exact_match",
    "f1",
    "gold_passage_asker",
    "has_relevant_passage",
    "latency_summary",
    "load_examples",
    "load_squad_paragraphs",
    "percentile",
    "pipeline_asker",
    "relevant_rank",
    "score_answer",
    "squad_paragraph_pipeline",
    "write_predictions",
]
