"""Fitting the boundary model (:mod:`qa.readers.boundaries`) on the reader's own n-best lists.

For each training question the reader ranks its spans in the gold paragraph; the spans that
overlap its best one form a group, and the model learns which of them matches the gold answer
(a conditional logit: softmax over each group, L2-regularised, fitted with L-BFGS). Only training
files are read. The reader was trained on most of them, so its margins there are a little more
confident than on new text; the held-out paragraphs of the same files (the split training used)
give the before/after figures that are recorded with the model.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..eval.metrics import exact_match, f1
from ..readers.boundaries import (
    BoundaryModel,
    edge_terms,
    group_features,
    language_of,
)
from ..readers.transformer import TransformerReader
from ..schema import Passage
from .conditional_logit import fit_conditional_logit
from .config import TrainConfig
from .data import SpanExample, load_training_examples

logger = logging.getLogger(__name__)

BOUNDARY_FILES = ("cmrc2018_train.json", "cmrc2018_trial.json")
"""Simplified Chinese with short, consistent answers: the habits the model should learn."""


@dataclass(frozen=True)
class Group:
    """One question's overlapping spans, their feature rows, and how each scores against gold."""

    dense: np.ndarray
    terms: list[list[str]]
    exact: np.ndarray
    f1: np.ndarray
    boundary_error: np.ndarray
    """Per span: wrong, but it contains the gold answer or lies inside it."""


def collect_groups(
    reader: TransformerReader, examples: Sequence[SpanExample], *, desc: str = "n-best"
) -> list[Group]:
    """The reader's group of overlapping spans for each example, read in its own paragraph."""
    groups: list[Group] = []
    for ex in tqdm(examples, desc=desc, disable=not logger.isEnabledFor(logging.INFO)):
        passage = Passage(
            id="gold", doc_id="gold", title="", text=ex.context, start=0, end=len(ex.context)
        )
        found = reader.boundary_candidates(ex.question, passage)
        if not found:
            continue
        gold = [ex.answer_text]
        texts = [text for text, _ in found]
        spans = [c for _, c in found]
        exact = np.array([exact_match(t, gold) for t in texts])
        groups.append(
            Group(
                dense=group_features(ex.question, ex.context, spans),
                terms=[edge_terms(ex.context, c) for c in spans],
                exact=exact,
                f1=np.array([f1(t, gold) for t in texts]),
                boundary_error=np.array(
                    [
                        not e and (ex.answer_text in t or t in ex.answer_text)
                        for t, e in zip(texts, exact, strict=True)
                    ]
                ),
            )
        )
    return groups


def fit_boundary_model(
    groups: Sequence[Group],
    *,
    l2: float = 1.0,
    l2_terms: float = 10.0,
    min_count: int = 5,
    languages: tuple[str, ...] = ("zh",),
) -> BoundaryModel:
    """Conditional logit over each group whose gold answer is among its spans."""
    usable = [g for g in groups if len(g.exact) > 1 and g.exact.any()]
    if not usable:
        raise ValueError("no group has the gold answer among several spans: nothing to learn")
    fitted = fit_conditional_logit(
        [g.dense for g in usable],
        [g.terms for g in usable],
        [g.exact for g in usable],
        l2=l2,
        l2_terms=l2_terms,
        min_count=min_count,
    )
    return BoundaryModel(weights=fitted.dense, terms=fitted.terms, languages=languages)


def choice_scores(groups: Sequence[Group], model: BoundaryModel | None) -> dict[str, float]:
    """EM, F1 and the share of wrong answers that are boundary errors, with the reader's best
    span (``model=None``) or the model's choice; in percent."""
    exact = f1_sum = wrong = boundary = 0.0
    for g in groups:
        k = 0 if model is None else _choose(model, g)
        exact += g.exact[k]
        f1_sum += g.f1[k]
        wrong += not g.exact[k]
        boundary += bool(g.boundary_error[k])
    n = max(len(groups), 1)
    return {
        "n": len(groups),
        "exact_match": float(round(100 * exact / n, 2)),
        "f1": float(round(100 * f1_sum / n, 2)),
        "boundary_error_share": float(round(100 * boundary / max(wrong, 1), 2)),
    }


def _choose(model: BoundaryModel, g: Group) -> int:
    return int(np.argmax(model.row_scores(g.dense, g.terms)))


def fit_for_reader(
    reader_dir: Path,
    data_dir: Path,
    *,
    limit: int | None = None,
    files: tuple[str, ...] = BOUNDARY_FILES,
    seed: int = 13,
) -> BoundaryModel:
    """Fit the boundary model of the reader in ``reader_dir`` on the training split of
    ``files`` and measure it on their held-out paragraphs (the split training used)."""
    config = TrainConfig(data_dir=data_dir, out_dir=reader_dir, files=files, english_fraction=0.0)
    train, held = load_training_examples(config, random.Random(seed))
    train = [ex for ex in train if language_of(ex.question) == "zh"]
    if limit is not None:
        train = train[:limit]
    reader = TransformerReader(str(reader_dir), early_exit=None)
    fitted = collect_groups(reader, train, desc="n-best (training split)")
    checked = collect_groups(reader, held, desc="n-best (held out)")
    model = fit_boundary_model(fitted)
    metrics = {
        "files": list(files),
        "fitted_on_questions": len(fitted),
        "heldout_before": choice_scores(checked, None),
        "heldout_after": choice_scores(checked, model),
    }
    logger.info("held-out before %s, after %s", metrics["heldout_before"], metrics["heldout_after"])
    return BoundaryModel(
        weights=model.weights, terms=model.terms, languages=model.languages, metrics=metrics
    )
