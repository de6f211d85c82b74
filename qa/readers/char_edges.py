"""Answer edges inside a subword token: the reader's spans end where its tokens end, answers don't.

The reader scores tokens, and e5's SentencePiece vocabulary glues Chinese characters across word
boundaries: "在香港", "是中国", "年起", "年的" are single tokens. An answer "香港中文大学" that
starts inside "在香港" cannot be given by any span of whole tokens; about 4% of CMRC 2018 gold
answers are like that (and tidying the punctuation at the edges recovers only part of them).
Once the reader has chosen its first and last token, this model chooses the character inside
each where the answer starts or ends: a conditional logit over the positions a token offers,
with whether jieba puts a word boundary there, how many characters it cuts off, and the
characters on either side as learned terms (``是``/``在`` before an answer, ``的`` after one).
It is fitted on the gold answers of the training files (:mod:`qa.training.char_edges`), not on
the reader's outputs, and travels beside the reader in ``char_edges.json``.

Only positions next to a Chinese character are offered inside a token: Latin words are split
from each other by spaces, so a cut inside one would only break a word.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ..schema import Answer, Span
from .boundaries import edge_symbol
from .spans import CJK, SpanCandidate, answer_key, tidy_span

Side = Literal["start", "end"]
EDGE_FEATURES: tuple[str, ...] = ("token_edge", "word_boundary", "cut_chars")
CHAR_EDGES_FORMAT = "ludao-char-edges-1"
_WORD_CONTEXT = 8
"""Characters on either side of the token that jieba sees to place its word boundaries."""

Segmenter = Callable[[str], Iterator[str]]


@functools.cache
def default_segmenter() -> Segmenter:
    """jieba's word cut, with the dictionary cache the rest of Ludao uses."""
    from ..jieba_dictionary import default_tokenizer

    return default_tokenizer().cut


@dataclass(frozen=True)
class EdgeOption:
    """One place an answer edge may sit inside a token, with what the model sees there."""

    position: int
    dense: np.ndarray
    terms: list[str]


def word_boundaries(text: str, lo: int, hi: int, segmenter: Segmenter) -> set[int]:
    """Positions in ``text`` where jieba ends a word, cutting only ``text[lo:hi]`` widened by
    :data:`_WORD_CONTEXT` characters (the edges of that window are not counted)."""
    left, right = max(0, lo - _WORD_CONTEXT), min(len(text), hi + _WORD_CONTEXT)
    found: set[int] = set()
    position = left
    for word in segmenter(text[left:right]):
        position += len(word)
        found.add(position)
    found.discard(right)
    if right == len(text):
        found.add(right)
    if left == 0:
        found.add(0)
    return found


def edge_options(
    text: str, token_start: int, token_end: int, side: Side, segmenter: Segmenter
) -> list[EdgeOption]:
    """Where an answer whose ``side`` lies in the token ``text[token_start:token_end]`` may put
    that edge: the token's own edge first, then each inner position next to a Chinese character.

    An empty list means the token offers no choice (one character, or no Chinese beside it).
    """
    if side == "start":
        edge = next((p for p in range(token_start, token_end) if not text[p].isspace()), None)
        if edge is None:
            return []
        inner = range(edge + 1, token_end)
    else:
        edge = token_end
        inner = range(token_start + 1, token_end)
    places = [
        p
        for p in inner
        if not text[p - 1].isspace()
        and not text[p].isspace()
        and (CJK.match(text[p - 1]) or CJK.match(text[p]))
    ]
    if not places:
        return []
    boundaries = word_boundaries(text, token_start, token_end, segmenter)
    options = []
    for p in [edge, *places]:
        cut = text[token_start:p].strip() if side == "start" else text[p:token_end]
        before = edge_symbol(text[p - 1]) if p > 0 else "∅"
        after = edge_symbol(text[p]) if p < len(text) else "∅"
        at_word = p in boundaries
        dense = np.array([float(p == edge), float(at_word), float(len(cut))])
        terms = [
            f"C:{cut}" if len(cut) <= 2 else "C:…",
            f"B:{before}",
            f"A:{after}",
            f"BA:{before}{after}",
            f"W{int(at_word)}E{int(p == edge)}",
        ]
        options.append(EdgeOption(position=p, dense=dense, terms=terms))
    return options


@dataclass(frozen=True)
class SideWeights:
    dense: tuple[float, ...]
    terms: dict[str, float]

    def scores(self, options: list[EdgeOption]) -> np.ndarray:
        w = np.asarray(self.dense)
        return np.array(
            [o.dense @ w + sum(self.terms.get(t, 0.0) for t in o.terms) for o in options]
        )

    def choose(self, options: list[EdgeOption]) -> int:
        return options[int(np.argmax(self.scores(options)))].position


@dataclass(frozen=True)
class CharEdgeModel:
    """Weights for the start side and the end side, and what fitting them measured."""

    start: SideWeights
    end: SideWeights
    metrics: dict | None = None

    def refine(
        self,
        text: str,
        start: int,
        end: int,
        start_token_end: int,
        end_token_start: int,
        segmenter: Segmenter | None = None,
    ) -> tuple[int, int]:
        """The span ``text[start:end]`` of whole tokens with each edge moved to the position the
        model prefers inside its token (``[start, start_token_end)`` is the first token,
        ``[end_token_start, end)`` the last). The span never becomes empty."""
        segment = segmenter or default_segmenter()
        options = edge_options(text, start, start_token_end, "start", segment)
        new_start = self.start.choose(options) if options else start
        options = [
            o
            for o in edge_options(text, end_token_start, end, "end", segment)
            if o.position > new_start
        ]
        new_end = self.end.choose(options) if options else end
        if new_end <= new_start:
            return start, end
        return new_start, new_end

    def to_dict(self) -> dict:
        def side(weights: SideWeights) -> dict:
            return {
                "weights": [round(w, 6) for w in weights.dense],
                "terms": {
                    t: round(w, 5) for t, w in sorted(weights.terms.items()) if abs(w) >= 1e-4
                },
            }

        return {
            "format": CHAR_EDGES_FORMAT,
            "features": list(EDGE_FEATURES),
            "start": side(self.start),
            "end": side(self.end),
            "metrics": self.metrics or {},
        }

    @classmethod
    def from_dict(cls, raw: dict) -> CharEdgeModel:
        if (
            raw.get("format") != CHAR_EDGES_FORMAT
            or tuple(raw.get("features", ())) != EDGE_FEATURES
        ):
            raise ValueError(
                "character-edge model of another format or features than this version computes; "
                "fit it again (ludao fit-char-edges)"
            )

        def side(part: dict) -> SideWeights:
            weights = tuple(float(w) for w in part["weights"])
            if len(weights) != len(EDGE_FEATURES):
                raise ValueError("character-edge weights do not match its features")
            return SideWeights(weights, {str(t): float(w) for t, w in part["terms"].items()})

        return cls(side(raw["start"]), side(raw["end"]), metrics=raw.get("metrics") or None)


def refine_answers(
    model: CharEdgeModel, answers: list[Answer], source: dict[int, SpanCandidate]
) -> list[Answer]:
    """The reader's final answers with each edge moved inside its token by ``model``;
    ``source[id(answer)]`` is the span candidate an answer was read from. Only these few are
    refined, not every candidate ranked: each refinement asks jieba about a token's
    surroundings. Two answers that now read the same are kept once, the better one."""
    refined: list[Answer] = []
    seen: set[str] = set()
    for answer in answers:
        cand, text = source[id(answer)], answer.passage.text
        if cand.start_token_end >= 0:
            start, end = model.refine(
                text,
                cand.char_start,
                cand.char_end,
                cand.start_token_end,
                cand.end_token_start,
            )
            start, end = tidy_span(text, start, end)
            if end > start:
                answer = replace(answer, text=text[start:end], span=Span(start, end))
        key = answer_key(answer.text)
        if key not in seen:
            seen.add(key)
            refined.append(answer)
    return refined
