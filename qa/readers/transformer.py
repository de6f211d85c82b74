"""The neural extractive reader: any ``AutoModelForQuestionAnswering`` over passage windows.

transformers 5 has no question-answering pipeline, so decoding is ours: each passage is cut into
overlapping windows (``windows.make_windows``), all windows of all passages run in batches, every
window proposes its best spans (``spans.best_spans``), spans are tidied, mapped back to passage
characters, merged when several windows or passages give the same text, and scored with the
calibration that travels with the model. The reader declines when even the best span's
probability is under the model's no-answer threshold (chosen on held-out training data).

Speed options, each measured in ``benchmarks/speed.py`` before being trusted: the precision
(bf16 autocast where the CPU has native bf16, the default ``"auto"``; int8 dynamic quantization
of the Linear layers, which this reader does not survive), reading only the first
``max_passages`` retrieved passages, shorter windows (``max_length``/``stride``), and
``early_exit``: read the top passage alone first and skip the rest when its best answer is
already that probable.

On a CPU the windows run on the lean BERT layers (``engine="lean"``, :mod:`.lean`: weights
packed once, no padding token multiplied outside attention; the same logits); ``"torch"`` is
transformers' own forward, which other devices and other architectures keep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.lean import TOKEN_BUDGET, token_budget_batches
from embeddings.precision import (
    Precision,
    ResolvedPrecision,
    autocast,
    check_precision,
    resolve_precision,
)

from ..schema import Answer, Passage, Span
from .base import Reading
from .boundaries import (
    BOUNDARY_CANDIDATES,
    BoundaryCandidate,
    boundary_group,
    language_of,
    overlapping_ranked,
)
from .char_edges import refine_answers
from .compact import ReaderConfig, load_reader_model
from .lean import READER_ENGINES, LeanSpanScorer, unsupported_reason
from .spans import Calibration, SpanCandidate, answer_key, best_spans, tidy_span
from .windows import make_windows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowLogits:
    """Start/end logits of every window, with the windows they came from."""

    start: list[np.ndarray]
    end: list[np.ndarray]
    tokens: int = 0
    """Positions the model ran over, padding included: the reader's cost, for benchmarks."""
    widths: list[int] = field(default_factory=list)
    """Per window, the padded length of the batch it ran in (they sum to ``tokens``)."""


class TransformerReader:
    """Extractive reader on a span-extraction model; loads lazily on first use."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 16,
        max_length: int | None = None,
        stride: int | None = None,
        max_answer_tokens: int | None = None,
        no_answer_threshold: float | None = None,
        precision: Precision = "auto",
        max_passages: int | None = None,
        early_exit: float | None = None,
        engine: str = "lean",
    ) -> None:
        check_precision(precision, device)
        if engine not in READER_ENGINES:
            raise ValueError(f"unknown reader engine {engine!r}; use one of {READER_ENGINES}")
        if max_passages is not None and max_passages < 1:
            raise ValueError(f"max_passages must be at least 1, got {max_passages}")
        if early_exit is not None and not 0.0 < early_exit <= 1.0:
            raise ValueError(f"early_exit is a probability in (0, 1], got {early_exit}")
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self._resolved: ResolvedPrecision | None = None
        self.max_passages = max_passages
        self.early_exit = early_exit
        self.engine = engine
        self._lean: LeanSpanScorer | None = None
        self._overrides = {
            "max_length": max_length,
            "stride": stride,
            "max_answer_tokens": max_answer_tokens,
            "no_answer_threshold": no_answer_threshold,
        }
        self._model = None
        self._tokenizer = None
        self._config: ReaderConfig | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        path = Path(self.model_name)
        return path.name if path.is_dir() else self.model_name

    @property
    def config(self) -> ReaderConfig:
        self.warm_up()
        assert self._config is not None
        return self._config

    def warm_up(self) -> None:
        """Load model and tokenizer once; safe to call from several threads."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            resolved = resolve_precision(self.precision, self.device)
            model, tokenizer, config = load_reader_model(  # plain: built for the lean path
                self.model_name, self.device, resolved, plain=self.engine == "lean"
            )
            for key, value in self._overrides.items():
                if value is not None:
                    setattr(config, key, value)
            self._tokenizer, self._config, self._resolved = tokenizer, config, resolved
            self._lean = self._lean_scorer(model, tokenizer)
            self._model = model
            logger.info("reader %s loaded, runs at %s", self.model_name, resolved)

    def _lean_scorer(self, model: Any, tokenizer: Any) -> LeanSpanScorer | None:
        """The lean path (:mod:`.lean`), unless off or unable to run this model (logged)."""
        if self.engine != "lean":
            return None
        if str(self.device).split(":")[0] != "cpu":
            logger.info("reader: the lean path is for CPUs; transformers reads on %s", self.device)
            return None
        reason = unsupported_reason(model, tokenizer)
        if reason is not None:
            logger.info("reader: the lean path cannot run %s (%s)", self.model_name, reason)
            return None
        return LeanSpanScorer(model, tokenizer)

    @property
    def tokenizer(self) -> Any:
        """The tokenizer that cuts this reader's windows (loads the reader)."""
        self.warm_up()
        return self._tokenizer

    @property
    def resolved_precision(self) -> ResolvedPrecision:
        """The precision the model runs at on this machine (loads it)."""
        self.warm_up()
        assert self._resolved is not None
        return self._resolved

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Reading:
        """Best answers to ``question`` found in ``passages``, best first."""
        return self.read_many([(question, passages, top_k)])[0]

    def read_many(self, requests: Sequence[tuple[str, Sequence[Passage], int]]) -> list[Reading]:
        """:meth:`read` for each ``(question, passages, top_k)``, their windows run together.

        Questions asked at the same moment (the server's micro-batches, ``qa.batching``) share
        the model's batches: wider products and one pass of per-call costs instead of one per
        question. Each reading is what :meth:`read` gives for its request alone, early exit
        included (first passages of all requests together, then the rest of those not sure yet).
        """
        jobs = [
            (q, list(ps[: self.max_passages] if self.max_passages is not None else ps), k)
            for q, ps, k in requests
        ]
        readings: list[Reading] = [Reading(answers=[], no_answer=True) for _ in jobs]
        live = [i for i, (_, passages, _) in enumerate(jobs) if passages]
        if not live:
            return readings
        self.warm_up()
        # Which calibration and threshold apply depends on the question and its passages only:
        # decided once per request, for the early-exit check and the final reading alike.
        decisions = {
            i: self.config.decision_for(jobs[i][0], [p.text for p in jobs[i][1]]) for i in live
        }
        staged = self.early_exit is not None
        first = self._candidates_many(
            [(jobs[i][0], jobs[i][1][:1] if staged else jobs[i][1], 0) for i in live]
        )
        found = dict(zip(live, first, strict=True))
        rest: list[int] = []
        for i in live:
            _, passages, top_k = jobs[i]
            calibration, threshold = decisions[i]
            if staged and len(passages) > 1:
                candidates, tokens = found[i]
                answers, best_margin = self._merge(
                    jobs[i][0], candidates, passages, top_k, calibration
                )
                if answers and answers[0].score >= self.early_exit:  # type: ignore[operator]
                    readings[i] = self._reading(
                        answers, best_margin, tokens, threshold, early_exit=True
                    )
                    continue
                rest.append(i)
        more = self._candidates_many([(jobs[i][0], jobs[i][1][1:], 1) for i in rest])
        for i, (candidates, tokens) in zip(rest, more, strict=True):
            found[i] = (found[i][0] + candidates, found[i][1] + tokens)
        for i in live:
            if readings[i].early_exit:
                continue
            _, passages, top_k = jobs[i]
            calibration, threshold = decisions[i]
            candidates, tokens = found[i]
            answers, best_margin = self._merge(jobs[i][0], candidates, passages, top_k, calibration)
            readings[i] = self._reading(answers, best_margin, tokens, threshold)
        return readings

    def _reading(
        self,
        answers: list[Answer],
        best_margin: float,
        tokens: int,
        threshold: float,
        *,
        early_exit: bool = False,
    ) -> Reading:
        best = answers[0].score if answers else 0.0
        return Reading(
            answers=answers,
            no_answer=best < threshold,
            best_score=best,
            best_margin=best_margin,
            tokens=tokens,
            early_exit=early_exit,
        )

    def _candidates(
        self, question: str, passages: Sequence[Passage], *, first_index: int
    ) -> tuple[list[SpanCandidate], int]:
        """Span candidates of ``passages`` (``context_index`` counts from ``first_index``) and
        the token positions the model ran over to find them."""
        return self._candidates_many([(question, passages, first_index)])[0]

    def _candidates_many(
        self, jobs: Sequence[tuple[str, Sequence[Passage], int]]
    ) -> list[tuple[list[SpanCandidate], int]]:
        """:meth:`_candidates` for each ``(question, passages, first_index)``, in one model run."""
        config = self.config
        questions: list[str] = []
        texts: list[str] = []
        owner: list[tuple[int, int]] = []  # per flat context: (job, its index in the job)
        for j, (question, passages, first_index) in enumerate(jobs):
            for k, passage in enumerate(passages):
                questions.append(question)
                texts.append(passage.text)
                owner.append((j, first_index + k))
        found: list[tuple[list[SpanCandidate], int]] = [([], 0) for _ in jobs]
        if not texts:
            return found
        windows = make_windows(
            self._tokenizer, questions, texts, max_length=config.max_length, stride=config.stride
        )
        logits = self._run(windows)
        for w in range(len(windows)):
            j, context_index = owner[windows.context_index[w]]
            candidates, tokens = found[j]
            candidates.extend(
                best_spans(
                    logits.start[w],
                    logits.end[w],
                    windows.offsets[w],
                    context_index=context_index,
                    max_answer_tokens=config.max_answer_tokens,
                )
            )
            found[j] = (candidates, tokens + logits.widths[w])
        return found

    def _run(self, windows) -> WindowLogits:
        if self._lean is not None:
            return self._run_lean(windows)
        import torch

        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        pad_id = self._tokenizer.pad_token_id
        order = sorted(range(len(windows)), key=lambda w: len(windows.input_ids[w]))
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        widths: dict[int, int] = {}
        tokens = 0
        assert self._resolved is not None
        with torch.inference_mode(), autocast(self._resolved, self.device):
            for lo in range(0, len(order), self.batch_size):
                rows = order[lo : lo + self.batch_size]
                ids, mask = windows.padded(rows, pad_id)
                tokens += int(ids.size)
                out = self._model(
                    input_ids=torch.from_numpy(ids).to(self.device),
                    attention_mask=torch.from_numpy(mask).to(self.device),
                )
                s = out.start_logits.float().cpu().numpy()
                e = out.end_logits.float().cpu().numpy()
                for i, w in enumerate(rows):
                    n = len(windows.input_ids[w])
                    results[w] = (s[i, :n], e[i, :n])
                    widths[w] = int(ids.shape[1])
        for w in range(len(windows)):
            starts.append(results[w][0])
            ends.append(results[w][1])
        return WindowLogits(
            start=starts, end=ends, tokens=tokens, widths=[widths[w] for w in range(len(windows))]
        )

    def _run_lean(self, windows) -> WindowLogits:
        """:meth:`_run` on the lean path: windows in token-budget batches, shortest first, and
        no padding token counted (each window's width is its own length)."""
        assert self._lean is not None
        rows = windows.input_ids
        lengths = [len(r) for r in rows]
        logits: list[tuple[np.ndarray, np.ndarray]] = [None] * len(rows)  # type: ignore[list-item]
        for batch in token_budget_batches(lengths, TOKEN_BUDGET):
            for w, pair in zip(batch, self._lean.logits([rows[w] for w in batch]), strict=True):
                logits[w] = pair
        return WindowLogits(
            start=[s for s, _ in logits],
            end=[e for _, e in logits],
            tokens=sum(lengths),
            widths=lengths,
        )

    def _merge(
        self,
        question: str,
        candidates: list[SpanCandidate],
        passages: Sequence[Passage],
        top_k: int,
        calibration: Calibration,
    ) -> tuple[list[Answer], float]:
        """Tidy spans, keep the best-scoring occurrence of each distinct answer text, and let the
        boundary model (where the reader has one) choose the edges of the best answer.

        Also returns the best raw margin, which calibration is fitted on.
        """
        ranked = self._ranked(candidates, passages, limit=max(top_k, 1) * 4)
        if not ranked:
            return [], -float("inf")
        best_margin = ranked[0][1].margin
        answers = [
            Answer(
                text=passage.text[start:end],
                score=calibration.probability(cand.margin),
                passage=passage,
                span=Span(start, end),
            )
            for passage, cand, start, end in ranked
        ]  # in margin order, whatever the calibration
        source = {id(a): cand for a, (_, cand, _, _) in zip(answers, ranked, strict=True)}
        model = self.config.boundaries
        if model is not None and language_of(question) in model.languages:
            group = overlapping_ranked(ranked)
            chosen = group[model.choose(question, ranked[0][0].text, boundary_group(ranked, group))]
            if chosen != 0:
                # Only the edges move: the answer keeps the confidence of the reader's best span.
                top = replace(answers[chosen], score=answers[0].score)
                source[id(top)] = ranked[chosen][1]
                answers = [top] + [a for k, a in enumerate(answers) if k != chosen]
        kept = _drop_overlapping(answers)[:top_k]
        if self.config.char_edges is None:
            return kept, best_margin
        return refine_answers(self.config.char_edges, kept, source), best_margin

    def _ranked(
        self, candidates: list[SpanCandidate], passages: Sequence[Passage], *, limit: int
    ) -> list[tuple[Passage, SpanCandidate, int, int]]:
        """Tidied spans in margin order, one per distinct text: ``(passage, candidate, start,
        end)``. With a boundary model at least its group size, so that it has edges to choose."""
        if self.config.boundaries is not None:
            limit = max(limit, BOUNDARY_CANDIDATES)
        seen: set[str] = set()
        ranked: list[tuple[Passage, SpanCandidate, int, int]] = []
        for cand in sorted(candidates, key=lambda c: c.margin, reverse=True):
            passage = passages[cand.context_index]
            start, end = tidy_span(passage.text, cand.char_start, cand.char_end)
            if end <= start:
                continue
            key = answer_key(passage.text[start:end])
            if key in seen:
                continue
            seen.add(key)
            ranked.append((passage, cand, start, end))
            if len(ranked) >= limit:
                break
        return ranked

    def boundary_candidates(
        self, question: str, passage: Passage
    ) -> list[tuple[str, BoundaryCandidate]]:
        """The spans overlapping the best one in ``passage`` that the boundary model chooses
        among, best margin first, with their texts (what :mod:`qa.training.boundaries` fits on)."""
        self.warm_up()
        ((candidates, _),) = self._candidates_many([(question, [passage], 0)])
        ranked = self._ranked(candidates, [passage], limit=BOUNDARY_CANDIDATES)
        group = overlapping_ranked(ranked)
        return [
            (passage.text[ranked[k][2] : ranked[k][3]], c)
            for k, c in zip(group, boundary_group(ranked, group), strict=True)
        ]


def _drop_overlapping(answers: list[Answer]) -> list[Answer]:
    """Keep an answer only if it does not overlap a better one in the same passage."""
    kept: list[Answer] = []
    for ans in answers:
        clash = any(
            k.passage.id == ans.passage.id
            and ans.span.start < k.span.end
            and k.span.start < ans.span.end
            for k in kept
        )
        if not clash:
            kept.append(ans)
    return kept
