"""From start/end logits to answer spans: pure functions, no model, so each step is testable.

Scores are made comparable across windows and passages by measuring every span against its own
window's no-answer score (the first token): ``margin = start[i] + end[j] - (start[0] + end[0])``.
A window that does not hold the answer puts its mass on the first token, so its spans get a low
margin; softmax probabilities, by contrast, are normalised per window and would rank a confident
span in an irrelevant window as high as one in the right window. ``Calibration`` then maps a
margin to a probability that the answer is right (logistic fit on held-out training data).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OPENING = "《“‘「『（([【〈\"'"
CLOSING = "》”’」』）)]】〉\"'"
PAIRS = dict(zip(OPENING, CLOSING, strict=True))
TRAILING_JUNK = "，。、；：,;:！？!?…—- \t\n\u3000"
LEADING_JUNK = "，。、；：,;:！？!?…—- \t\n\u3000"


@dataclass(frozen=True)
class SpanCandidate:
    """A span in one window: characters [char_start, char_end) of the window's context."""

    context_index: int
    char_start: int
    char_end: int
    margin: float
    start_score: float = 0.0
    """The start token's logit above the window's no-answer start logit (``margin`` is this plus
    ``end_score``): the boundary re-scorer (:mod:`.boundaries`) weighs the two ends apart."""
    end_score: float = 0.0
    start_token_end: int = -1
    """Where the span's first token ends and its last token starts (characters of the context):
    the character-edge model (:mod:`.char_edges`) may move an edge inside those tokens."""
    end_token_start: int = -1


@dataclass(frozen=True)
class Calibration:
    """Logistic map from margin to probability: p = sigmoid(scale * margin + bias)."""

    scale: float = 0.5
    bias: float = 0.0

    def probability(self, margin: float) -> float:
        z = self.scale * margin + self.bias
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        ez = math.exp(z)
        return ez / (1.0 + ez)


CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
"""A Chinese character (unified ideographs, extension A, compatibility ideographs)."""
_LATIN = re.compile(r"[A-Za-z]")
CROSSLINGUAL_CJK_SHARE = 0.3
"""A question whose letters are less than this share Chinese characters is asked in another
language than a Chinese passage (code-switched questions included)."""


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None


def asked_across_languages(question: str, passage_texts: Sequence[str]) -> bool:
    """Whether a mostly-Latin-script ``question`` is asked of passages with Chinese text: the
    case that has its own calibration where the reader was fitted with one."""
    cjk, latin = len(CJK.findall(question)), len(_LATIN.findall(question))
    if cjk + latin == 0 or cjk / (cjk + latin) >= CROSSLINGUAL_CJK_SHARE:
        return False
    return any(has_cjk(text) for text in passage_texts)


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: list[tuple[int, int]],
    *,
    context_index: int,
    max_answer_tokens: int = 32,
    n_best: int = 20,
) -> list[SpanCandidate]:
    """Top spans of one window by start+end score, only over context tokens, end ≥ start."""
    context = np.array([s >= 0 for s, _ in offsets], dtype=bool)
    if not context.any():
        return []
    null_start, null_end = float(start_logits[0]), float(end_logits[0])
    masked_start = np.where(context, start_logits, -np.inf)
    masked_end = np.where(context, end_logits, -np.inf)
    k = min(n_best, int(context.sum()))
    starts = np.argsort(-masked_start)[:k]
    ends = np.argsort(-masked_end)[:k]
    found: list[SpanCandidate] = []
    for i in starts:
        for j in ends:
            if j < i or j - i + 1 > max_answer_tokens:
                continue
            start_score = float(masked_start[i]) - null_start
            end_score = float(masked_end[j]) - null_end
            found.append(
                SpanCandidate(
                    context_index=context_index,
                    char_start=offsets[i][0],
                    char_end=offsets[j][1],
                    margin=start_score + end_score,
                    start_score=start_score,
                    end_score=end_score,
                    start_token_end=offsets[i][1],
                    end_token_start=offsets[j][0],
                )
            )
    found.sort(key=lambda c: c.margin, reverse=True)
    return found[:n_best]


_SPACE = re.compile(r"\s+")


def answer_key(text: str) -> str:
    """What makes two answer texts the same answer: case and white space aside."""
    return _SPACE.sub("", text).lower()


def tidy_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Make a span read as a whole answer.

    Subword tokens end where the tokenizer's pieces end, not where words do; this closes quotes
    and book-title marks the span opened (or opens ones it closes) when the partner sits right
    beside it, and trims separators at either end. Nothing here knows about a particular answer.
    """
    start, end = _trim(text, start, end)
    if end <= start:
        return start, end
    span = text[start:end]
    for open_char, close_char in PAIRS.items():
        if open_char == close_char:
            continue
        opens, closes = span.count(open_char), span.count(close_char)
        if opens > closes:
            if end < len(text) and text[end] == close_char:
                end += 1
            elif span.startswith(open_char) and opens == 1:
                start += 1
        elif closes > opens:
            if start > 0 and text[start - 1] == open_char:
                start -= 1
            elif span.endswith(close_char) and closes == 1:
                end -= 1
        span = text[start:end]
    return _trim(text, start, end)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in LEADING_JUNK:
        start += 1
    while end > start and text[end - 1] in TRAILING_JUNK:
        end -= 1
    return start, end
