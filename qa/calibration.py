"""Calibrating a trained reader on its held-out training questions, then packaging it.

Two things are fitted here, never on an evaluation file:

- a logistic map from a span's margin (its score over the window's no-answer score) to the
  probability that the span is right, so that "confidence 80%" means about that;
- the probability under which the reader declines, chosen to maximise the average of F1 over
  answerable held-out questions and of correct refusals over decoys (each held-out question
  paired with another held-out paragraph, which cannot contain its answer).
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .eval.metrics import f1
from .readers.base import Reading
from .readers.compact import ReaderConfig, export_compact
from .readers.spans import Calibration, asked_across_languages, has_cjk
from .readers.transformer import TransformerReader
from .schema import Passage

logger = logging.getLogger(__name__)

CORRECT_F1 = 0.5


def fit_logistic(margins: np.ndarray, labels: np.ndarray, *, iterations: int = 50) -> Calibration:
    """One-feature logistic regression by Newton's method (tiny ridge for stability)."""
    x = np.stack([margins, np.ones_like(margins)], axis=1)
    # Start from zero (p = 0.5 everywhere), where Newton's method on the convex logistic loss is
    # well behaved; from any other point, margins spread over tens of units overshoot and diverge.
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - labels) + 1e-3 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration(scale=float(w[0]), bias=float(w[1]))


def choose_threshold(
    answerable: list[tuple[float, float]], decoys: list[float]
) -> tuple[float, float]:
    """Probability threshold maximising mean(F1 on answerable, refusal rate on decoys).

    ``answerable`` holds (probability, f1) of each answerable question's best span; ``decoys``
    the best-span probability on each decoy.
    """
    candidates = sorted({0.0, *(p for p, _ in answerable), *decoys})
    best_t, best_value = 0.0, -1.0
    for t in candidates:
        kept_f1 = sum(score for p, score in answerable if p >= t) / max(len(answerable), 1)
        refused = sum(1 for p in decoys if p < t) / max(len(decoys), 1)
        value = (kept_f1 + refused) / 2
        if value > best_value:
            best_t, best_value = t, value
    return best_t, best_value


@dataclass
class HeldReadings:
    """What the reader made of held-out questions and of decoys built from them."""

    answerable: list[tuple[float, float]] = field(default_factory=list)
    """(margin, F1) of each answerable question's best span."""
    decoy_margins: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    by_language: dict[str, list[float]] = field(default_factory=dict)

    def fit(self) -> tuple[Calibration, float, float]:
        """Calibration, threshold and the decision objective at that threshold."""
        pairs = zip(self.margins, self.labels, strict=True)
        finite = [(m, y) for m, y in pairs if math.isfinite(m)]
        calibration = fit_logistic(
            np.array([m for m, _ in finite]), np.array([y for _, y in finite])
        )
        probs = [(calibration.probability(m), s) for m, s in self.answerable]
        decoy_probs = [calibration.probability(m) for m in self.decoy_margins]
        threshold, value = choose_threshold(probs, decoy_probs)
        return calibration, threshold, value

    def summary(self, objective: float) -> dict:
        """The figures recorded in ``reader.json`` (``objective`` from :meth:`fit`)."""
        f1_forced = sum(s for _, s in self.answerable) / max(len(self.answerable), 1)
        return {
            "heldout_questions": len(self.answerable),
            "heldout_decoys": len(self.decoy_margins),
            "heldout_f1_forced": round(100 * f1_forced, 2),
            "heldout_decision_objective": round(100 * objective, 2),
        }


def read_heldout(
    reader: TransformerReader,
    held: list[dict],
    rng: random.Random,
    *,
    decoy_pool: list[dict] | None = None,
    desc: str = "calibrate",
) -> HeldReadings:
    """Read each held-out question against its own paragraph and, for every other one, against
    a paragraph of ``decoy_pool`` (default ``held``) that cannot hold its answer: 2:1
    answerable to unanswerable."""
    pool = held if decoy_pool is None else decoy_pool
    out = HeldReadings()
    show = logger.isEnabledFor(logging.INFO)
    for i, ex in enumerate(tqdm(held, desc=desc, disable=not show)):
        reading = reader.read(ex["question"], [_passage(ex["context"], f"held:{i}")], top_k=1)
        margin = _margin(reading)
        text = reading.answers[0].text if reading.answers else ""
        score = f1(text, [ex["answer_text"]])
        out.answerable.append((margin, score))
        out.by_language.setdefault(ex.get("language", "zh"), []).append(score)
        out.margins.append(margin)
        out.labels.append(float(score >= CORRECT_F1))
        if i % 2 == 0 and len(pool) > 1:
            other = pool[(i + 1 + rng.randrange(len(pool) - 1)) % len(pool)]
            if (
                other["paragraph_key"] == ex["paragraph_key"]
                or ex["answer_text"] in other["context"]
            ):
                continue
            decoy = reader.read(ex["question"], [_passage(other["context"], f"decoy:{i}")], 1)
            out.decoy_margins.append(_margin(decoy))
            out.margins.append(out.decoy_margins[-1])
            out.labels.append(0.0)
    return out


def calibrate_and_package(
    checkpoint: Path,
    out_dir: Path,
    *,
    limit: int = 600,
    seed: int = 7,
    holdout: Path | None = None,
) -> dict:
    """Fit calibration and threshold on ``checkpoint/holdout.jsonl`` (or ``holdout``: another
    run's, which must hold out the same paragraphs); write the compact reader.

    Where the held-out split has enough questions asked across languages (mostly-English
    questions over Chinese paragraphs: the code-switched copies of ``qa.training.code_switch``),
    they get a calibration and threshold of their own, fitted on all of them with Chinese decoys:
    their margins run lower than same-language ones, and one threshold would decline nearly all.
    """
    training = json.loads((checkpoint / "training.json").read_text())["config"]
    holdout = holdout or checkpoint / "holdout.jsonl"
    everything = [json.loads(line) for line in holdout.open(encoding="utf-8")]
    rng = random.Random(seed)
    held = list(everything)
    rng.shuffle(held)
    held = held[:limit]
    reader = TransformerReader(str(checkpoint), max_length=256, stride=96)
    readings = read_heldout(reader, held, rng)
    calibration, threshold, value = readings.fit()
    metrics = {
        **readings.summary(value),
        # zh, en, and zh-en for code-switched copies (qa.training.code_switch)
        "heldout_f1_forced_by_language": {
            language: round(100 * sum(scores) / len(scores), 2)
            for language, scores in sorted(readings.by_language.items())
        },
        "training": training,
    }
    across = _crosslingual_fit(reader, everything, rng, limit=limit)
    if across is not None:
        metrics["crosslingual"] = across[2]
    config = ReaderConfig(
        base_model=str(training.get("base_model", "multilingual-e5-small")),
        max_length=256,
        stride=96,
        max_answer_tokens=32,
        calibration=calibration,
        no_answer_threshold=round(threshold, 4),
        metrics=metrics,
        crosslingual_calibration=across[0] if across else None,
        crosslingual_threshold=round(across[1], 4) if across else None,
    )
    export_compact(checkpoint, out_dir, config)
    logger.info("calibration %s, threshold %.3f", calibration, threshold)
    return {
        "out_dir": str(out_dir),
        "calibration": calibration.__dict__,
        "threshold": threshold,
        **metrics,
    }


MIN_CROSSLINGUAL = 60
"""Fewer cross-lingual held-out questions than this fit no calibration of their own."""


def _crosslingual_fit(
    reader: TransformerReader, held: list[dict], rng: random.Random, *, limit: int
) -> tuple[Calibration, float, dict] | None:
    chinese = [ex for ex in held if has_cjk(ex["context"])]
    across = [ex for ex in chinese if asked_across_languages(ex["question"], [ex["context"]])]
    if len(across) < MIN_CROSSLINGUAL:
        return None
    across = across[:limit]
    readings = read_heldout(reader, across, rng, decoy_pool=chinese, desc="cross-lingual")
    calibration, threshold, value = readings.fit()
    logger.info("cross-lingual calibration %s, threshold %.3f", calibration, threshold)
    return calibration, threshold, readings.summary(value)


def _passage(text: str, pid: str) -> Passage:
    return Passage(id=pid, doc_id=pid, title="", text=text, start=0, end=len(text))


def _margin(reading: Reading) -> float:
    """The best span's raw margin; a ``TransformerReader`` always reports one."""
    if reading.best_margin is None:
        raise ValueError("the reader reported no margin to calibrate on")
    return reading.best_margin
