"""Fitting the character-edge model (:mod:`qa.readers.char_edges`) on gold answers.

For every training answer the reader's own tokenizer cuts the question/paragraph windows exactly
as at inference; the token holding the answer's first character and the token holding its last
one each offer their inner positions, and the gold answer says which is right. Positions are
compared as the metrics compare answers: punctuation at an edge does not count (the reader tidies
it away). Only training files are read; the held-out paragraphs of the split training used give
the figures recorded with the model: how often the right edge is chosen inside a token, and the
share of held-out answers a span of the right tokens gives exactly, before and after.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..eval.metrics import exact_match
from ..readers.char_edges import (
    CharEdgeModel,
    EdgeOption,
    Segmenter,
    Side,
    SideWeights,
    default_segmenter,
    edge_options,
)
from ..readers.spans import LEADING_JUNK, TRAILING_JUNK, tidy_span
from ..readers.windows import answer_token_span, make_windows
from .conditional_logit import fit_conditional_logit
from .config import CHINESE_TRAIN_FILES, TrainConfig
from .data import load_training_examples
from .examples import SpanExample

logger = logging.getLogger(__name__)

BATCH = 256


@dataclass(frozen=True)
class TokenSpan:
    """A gold answer located in tokens: its character span and its first and last token."""

    example: SpanExample
    start_token: tuple[int, int]
    end_token: tuple[int, int]


def locate_answers(tokenizer, examples: Sequence[SpanExample], *, max_length: int, stride: int):
    """The first window of each example that holds its whole answer, as token extents."""
    located: list[TokenSpan] = []
    batches = range(0, len(examples), BATCH)
    for lo in tqdm(batches, desc="tokens", disable=not logger.isEnabledFor(logging.INFO)):
        chunk = examples[lo : lo + BATCH]
        windows = make_windows(
            tokenizer,
            [ex.question for ex in chunk],
            [ex.context for ex in chunk],
            max_length=max_length,
            stride=stride,
        )
        done: set[int] = set()
        for w, k in enumerate(windows.context_index):
            if k in done:
                continue
            ex = chunk[k]
            offsets = windows.offsets[w]
            tokens = answer_token_span(
                offsets, ex.answer_start, ex.answer_start + len(ex.answer_text)
            )
            if tokens is None:
                continue
            done.add(k)
            located.append(TokenSpan(ex, offsets[tokens[0]], offsets[tokens[1]]))
    return located


def _settled(text: str, position: int, side: Side) -> int:
    """Where an edge lands once the punctuation the reader tidies away is stepped over."""
    if side == "start":
        while position < len(text) and text[position] in LEADING_JUNK:
            position += 1
    else:
        while position > 0 and text[position - 1] in TRAILING_JUNK:
            position -= 1
    return position


def side_group(span: TokenSpan, side: Side, segmenter: Segmenter):
    """The options of one side of a located answer and which of them are right, or ``None``
    where the token offers no choice or no option matches the gold edge."""
    ex = span.example
    token = span.start_token if side == "start" else span.end_token
    options = edge_options(ex.context, token[0], token[1], side, segmenter)
    if not options:
        return None
    gold = ex.answer_start if side == "start" else ex.answer_start + len(ex.answer_text)
    target = _settled(ex.context, gold, side)
    right = np.array([_settled(ex.context, o.position, side) == target for o in options], float)
    if not right.any():
        return None
    return options, right


def fit_side(groups: Sequence[tuple[list[EdgeOption], np.ndarray]]) -> SideWeights:
    fitted = fit_conditional_logit(
        [np.stack([o.dense for o in options]) for options, _ in groups],
        [[o.terms for o in options] for options, _ in groups],
        [right for _, right in groups],
        l2=1.0,
        l2_terms=3.0,
    )
    return SideWeights(fitted.dense, fitted.terms)


def exact_share(
    spans: Sequence[TokenSpan], model: CharEdgeModel | None, segmenter: Segmenter
) -> float:
    """Percent of answers that the span of their own first and last token gives exactly (after
    tidying), with the edges moved by ``model`` or left at the tokens' edges."""
    hits = 0
    for span in spans:
        text = span.example.context
        start, end = span.start_token[0], span.end_token[1]
        if model is not None:
            start, end = model.refine(
                text, start, end, span.start_token[1], span.end_token[0], segmenter
            )
        start, end = tidy_span(text, start, end)
        hits += bool(exact_match(text[start:end], [span.example.answer_text]))
    return float(round(100 * hits / max(len(spans), 1), 2))


def side_accuracy(groups, weights: SideWeights | None) -> float:
    """Percent of the groups where the chosen position (the token edge without weights) is
    right."""
    right = 0.0
    for options, truth in groups:
        k = 0 if weights is None else int(np.argmax(weights.scores(options)))
        right += truth[k]
    return float(round(100 * right / max(len(groups), 1), 2))


def fit_char_edges(
    tokenizer,
    data_dir: Path,
    *,
    files: tuple[str, ...] = CHINESE_TRAIN_FILES,
    max_length: int = 256,
    stride: int = 96,
    seed: int = 13,
) -> CharEdgeModel:
    """Fit on the training split of ``files`` and measure on their held-out paragraphs."""
    config = TrainConfig(data_dir=data_dir, out_dir=data_dir, files=files, english_fraction=0.0)
    train, held = load_training_examples(config, random.Random(seed))
    train = [ex for ex in train if ex.language == "zh"]
    held = [ex for ex in held if ex.language == "zh"]
    segment = default_segmenter()
    located = {
        name: locate_answers(tokenizer, exs, max_length=max_length, stride=stride)
        for name, exs in (("train", train), ("held", held))
    }
    sides: dict[str, SideWeights] = {}
    metrics: dict = {"files": list(files), "fitted_on_answers": len(located["train"])}
    for side in ("start", "end"):
        groups = {
            name: [g for s in spans if (g := side_group(s, side, segment)) is not None]
            for name, spans in located.items()
        }
        sides[side] = fit_side(groups["train"])
        metrics[f"heldout_{side}_choices"] = {
            "groups": len(groups["held"]),
            "token_edge_right": side_accuracy(groups["held"], None),
            "model_right": side_accuracy(groups["held"], sides[side]),
        }
    model = CharEdgeModel(sides["start"], sides["end"])
    metrics["heldout_answers"] = len(located["held"])
    metrics["heldout_exact_from_gold_tokens"] = {
        "before": exact_share(located["held"], None, segment),
        "after": exact_share(located["held"], model, segment),
    }
    logger.info("character edges, held out: %s", metrics)
    return CharEdgeModel(model.start, model.end, metrics=metrics)
