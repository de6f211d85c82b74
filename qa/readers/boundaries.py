"""Choosing where an answer starts and ends: a span re-scorer learned from the reader's own n-best.

The reader knows *where* the answer is far better than it knows its exact edges: on held-out
training questions about six in ten of its wrong answers contain the gold answer or lie inside it
(``boundary errors``). Start/end logits are scored one token at a time, so nothing in them says
that "3.08%提升至2024年的3.46%" is two answers glued together, or that a span should stop before
"的". This module scores the candidates that overlap the reader's best span with a small linear
model over general features of a span (its logits relative to the best one, its length, the
character classes at and beside its edges, punctuation inside it, overlap with the question, the
kind of question against the kind of span) and picks the best-scoring one.

The weights are fitted by :mod:`qa.boundary_fit` on held-out *training* questions (a conditional
logit over each question's group of candidates) and travel in ``reader.json``; without them the
reader keeps the span with the highest margin. Only the edges change: which passage and which
region answers, the confidence and the no-answer decision stay the reader's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .spans import CJK, CLOSING, OPENING

if TYPE_CHECKING:
    from ..schema import Passage
    from .spans import SpanCandidate

    Ranked = Sequence[tuple[Passage, SpanCandidate, int, int]]
    """The reader's tidied spans in margin order: (passage, candidate, start, end)."""

_PUNCT = set("，。、；：,;:！？!?…—-·()（）[]【】《》“”‘’「」『』\"' \t\n\u3000")
_MARK_PAIRS = [(o, c) for o, c in zip(OPENING, CLOSING, strict=True) if o != c]
_INNER_BREAKS = set("，。；;！？!?")
_ENUMERATION = set("、和与及或,")
# Characters that in Chinese text mostly glue words together rather than belong to an answer
# (structural particles, copulas, prepositions). A general list, not fitted to any question.
_FUNCTION_CHARS = set("的了是在于从由被把和与及对向为将以而")
_QUESTION_KINDS = {
    "number": re.compile(
        r"多少|几[个年天次位名种件条家所项岁月]|多[大长高重远久深宽]|比例|百分|\bhow (many|much)\b",
        re.I,
    ),
    "time": re.compile(
        r"何时|什么时[候间]|哪一?年|哪一?天|哪一?月|年份|日期|时间|\bwhen\b|\bwhat year\b", re.I
    ),
    "person": re.compile(r"谁|哪位|何人|什么人|\bwho\b|\bwhom\b", re.I),
    "place": re.compile(r"哪里|哪儿|何地|何处|什么地方|哪个(国家|城市|省|地区)|\bwhere\b", re.I),
}

BOUNDARY_CANDIDATES = 20
"""How many distinct spans the reader ranks when it has a boundary model (the group is those of
them that overlap the best one)."""


def language_of(question: str) -> str:
    """``zh`` for a question with any CJK character, else ``en``: which boundary habits apply."""
    return "zh" if CJK.search(question) else "en"


FEATURES: tuple[str, ...] = (
    "margin_gap",
    "start_gap",
    "end_gap",
    "log_rank",
    "log_chars",
    "log_length_ratio",
    "contains_best",
    "inside_best",
    "is_best",
    *(f"first_{c}" for c in ("cjk", "digit", "latin", "punct", "other")),
    *(f"last_{c}" for c in ("cjk", "digit", "latin", "punct", "other")),
    "before_is_break",
    "after_is_break",
    "first_function_char",
    "last_function_char",
    "after_function_char",
    "inner_breaks",
    "inner_enumeration",
    "opens_unclosed",
    "question_overlap",
    "has_digit",
    "number_q_digit",
    "time_q_digit",
    "time_q_date_char",
    "person_q_short",
    "place_q_short",
    "latin_span",
)


@dataclass(frozen=True)
class BoundaryCandidate:
    """A tidied span of one passage with the reader's scores for it."""

    start: int
    end: int
    margin: float
    start_score: float
    end_score: float


def question_kinds(question: str) -> frozenset[str]:
    """The kinds of answer a question asks for (number, time, person, place), by its wording."""
    return frozenset(kind for kind, pattern in _QUESTION_KINDS.items() if pattern.search(question))


def _char_class(ch: str) -> str:
    if CJK.match(ch):
        return "cjk"
    if ch.isdigit():
        return "digit"
    if ch.isascii() and ch.isalpha():
        return "latin"
    if ch in _PUNCT or ch in OPENING or ch in CLOSING:
        return "punct"
    return "other"


def _is_break(ch: str | None) -> bool:
    return ch is None or ch in _PUNCT


def features(
    question: str,
    text: str,
    candidate: BoundaryCandidate,
    best: BoundaryCandidate,
    rank: int,
    kinds: frozenset[str] | None = None,
) -> np.ndarray:
    """The feature vector of ``candidate`` (in the order of :data:`FEATURES`), relative to the
    reader's best span ``best`` of the same group; ``rank`` is its place in margin order."""
    kinds = question_kinds(question) if kinds is None else kinds
    span = text[candidate.start : candidate.end]
    n = len(span)
    first, last = span[0], span[-1]
    before = text[candidate.start - 1] if candidate.start > 0 else None
    after = text[candidate.end] if candidate.end < len(text) else None
    first_class, last_class = _char_class(first), _char_class(last)
    question_chars = set(question)
    has_digit = any(ch.isdigit() for ch in span)
    short = n <= 6
    values = {
        "margin_gap": candidate.margin - best.margin,
        "start_gap": candidate.start_score - best.start_score,
        "end_gap": candidate.end_score - best.end_score,
        "log_rank": math.log1p(rank),
        "log_chars": math.log(n),
        "log_length_ratio": math.log(n / max(best.end - best.start, 1)),
        "contains_best": float(
            candidate.start <= best.start and best.end <= candidate.end and candidate != best
        ),
        "inside_best": float(
            best.start <= candidate.start and candidate.end <= best.end and candidate != best
        ),
        "is_best": float(candidate.start == best.start and candidate.end == best.end),
        f"first_{first_class}": 1.0,
        f"last_{last_class}": 1.0,
        "before_is_break": float(_is_break(before)),
        "after_is_break": float(_is_break(after)),
        "first_function_char": float(first in _FUNCTION_CHARS),
        "last_function_char": float(last in _FUNCTION_CHARS),
        "after_function_char": float(after is not None and after in _FUNCTION_CHARS),
        "inner_breaks": float(sum(ch in _INNER_BREAKS for ch in span)),
        "inner_enumeration": float(sum(ch in _ENUMERATION for ch in span[1:-1])),
        "opens_unclosed": float(
            any(
                span.count(o) != span.count(c)
                for o, c in zip(OPENING, CLOSING, strict=True)
                if o != c
            )
        ),
        "question_overlap": sum(ch in question_chars for ch in span if not ch.isspace()) / n,
        "has_digit": float(has_digit),
        "number_q_digit": float("number" in kinds and has_digit),
        "time_q_digit": float("time" in kinds and has_digit),
        "time_q_date_char": float("time" in kinds and any(ch in "年月日" for ch in span)),
        "person_q_short": float("person" in kinds and short),
        "place_q_short": float("place" in kinds and short),
        "latin_span": float(all(not CJK.match(ch) for ch in span)),
    }
    row = np.zeros(len(FEATURES))
    for i, name in enumerate(FEATURES):
        row[i] = values.get(name, 0.0)
    return row


def edge_symbol(ch: str | None) -> str:
    """A character as the lexical features see it: digits and Latin letters by class, so that
    "1998年" and "2024年" share their weights; ``∅`` for the edge of the passage."""
    if ch is None:
        return "∅"
    if ch.isdigit():
        return "0"
    if ch.isascii() and ch.isalpha():
        return "a"
    return ch


def edge_terms(text: str, candidate: BoundaryCandidate) -> list[str]:
    """The characters at and beside a span's edges as sparse features: first, last, the one
    before, the one after, and the two pairs across each edge (``的`` after an answer, ``是``
    before it). Weights for them are learned; none is written by hand."""
    first = edge_symbol(text[candidate.start])
    last = edge_symbol(text[candidate.end - 1])
    before = edge_symbol(text[candidate.start - 1]) if candidate.start > 0 else "∅"
    after = edge_symbol(text[candidate.end]) if candidate.end < len(text) else "∅"
    return [
        f"F:{first}",
        f"L:{last}",
        f"B:{before}",
        f"A:{after}",
        f"BF:{before}{first}",
        f"LA:{last}{after}",
    ]


def group_features(question: str, text: str, group: Sequence[BoundaryCandidate]) -> np.ndarray:
    """Dense feature rows of a group of overlapping candidates, ``group[0]`` the reader's best."""
    kinds = question_kinds(question)
    return np.stack([features(question, text, c, group[0], r, kinds) for r, c in enumerate(group)])


@dataclass(frozen=True)
class BoundaryModel:
    """Linear weights over :data:`FEATURES` and over edge terms; the highest score is chosen.

    ``languages`` are the question languages it was fitted for: annotation habits differ between
    datasets (CMRC answers are short, DRCD and SQuAD ones often longer), so a model fitted on
    Chinese questions is not applied to English ones.
    """

    weights: tuple[float, ...]
    terms: dict[str, float]
    languages: tuple[str, ...] = ("zh",)
    feature_names: tuple[str, ...] = FEATURES
    metrics: dict | None = None

    def __post_init__(self) -> None:
        if tuple(self.feature_names) != FEATURES or len(self.weights) != len(FEATURES):
            raise ValueError(
                "boundary model was fitted on other features than this version computes; "
                "fit it again (ludao fit-boundaries)"
            )

    def scores(self, question: str, text: str, group: Sequence[BoundaryCandidate]) -> np.ndarray:
        terms = [edge_terms(text, c) for c in group]
        return self.row_scores(group_features(question, text, group), terms)

    def row_scores(self, dense: np.ndarray, terms: Sequence[Sequence[str]]) -> np.ndarray:
        """Scores of feature rows already computed (``group_features``, ``edge_terms``)."""
        lexical = [sum(self.terms.get(t, 0.0) for t in row) for row in terms]
        return dense @ np.asarray(self.weights) + np.asarray(lexical)

    def choose(self, question: str, text: str, group: Sequence[BoundaryCandidate]) -> int:
        """Index in ``group`` of the span to answer with (0 keeps the reader's best)."""
        if len(group) < 2:
            return 0
        return int(np.argmax(self.scores(question, text, group)))

    def to_dict(self) -> dict:
        return {
            "format": "ludao-boundaries-1",
            "languages": list(self.languages),
            "features": list(self.feature_names),
            "weights": [round(w, 6) for w in self.weights],
            "terms": {t: round(w, 5) for t, w in sorted(self.terms.items()) if abs(w) >= 1e-4},
            "metrics": self.metrics or {},
        }

    @classmethod
    def from_dict(cls, raw: dict) -> BoundaryModel:
        return cls(
            weights=tuple(float(w) for w in raw["weights"]),
            terms={str(t): float(w) for t, w in raw.get("terms", {}).items()},
            languages=tuple(raw.get("languages", ("zh",))),
            feature_names=tuple(raw["features"]),
            metrics=raw.get("metrics") or None,
        )


def overlapping_group(candidates: Sequence[BoundaryCandidate]) -> list[int]:
    """Indices of the candidates (margin order) that overlap the first one, the first included."""
    if not candidates:
        return []
    best = candidates[0]
    return [i for i, c in enumerate(candidates) if c.start < best.end and best.start < c.end]


def overlapping_ranked(ranked: Ranked) -> list[int]:
    """Indices of the ranked spans in the best span's passage that overlap it (it first)."""
    if not ranked:
        return []
    top = ranked[0]
    return [
        k
        for k, (passage, _, start, end) in enumerate(ranked)
        if passage.id == top[0].id and start < top[3] and top[2] < end
    ]


def boundary_group(ranked: Ranked, group: Sequence[int]) -> list[BoundaryCandidate]:
    return [
        BoundaryCandidate(
            start=ranked[k][2],
            end=ranked[k][3],
            margin=ranked[k][1].margin,
            start_score=ranked[k][1].start_score,
            end_score=ranked[k][1].end_score,
        )
        for k in group
    ]
