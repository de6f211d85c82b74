"""A baseline reader that needs no model: the sentence or clause that best covers the question.

It is honest about what it is: it returns a whole sentence (or clause), scored by how many of the
question's search terms it contains weighted by rarity, and declines when the overlap is small.
It keeps Ludao usable without the neural reader and gives evaluations a floor to compare with.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ..chunking import split_sentences
from ..schema import Answer, Passage, Span
from ..search_terms import tokenize_for_search
from .base import Reading


class SentenceReader:
    """Pick the best-supported sentence from the passages."""

    name = "sentence"

    def __init__(self, *, min_coverage: float = 0.35) -> None:
        self.min_coverage = min_coverage

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Reading:
        terms = set(tokenize_for_search(question))
        if not terms or not passages:
            return Reading(answers=[], no_answer=True)
        sentences = [(p, s, e) for p in passages for s, e in split_sentences(p.text)]
        doc_freq: Counter[str] = Counter()
        tokens_of = []
        for p, s, e in sentences:
            toks = set(tokenize_for_search(p.text[s:e]))
            tokens_of.append(toks)
            doc_freq.update(toks & terms)
        n = len(sentences)
        weight = {t: math.log(1 + n / (1 + doc_freq[t])) for t in terms}
        total = sum(weight.values())
        scored: list[Answer] = []
        for (p, s, e), toks in zip(sentences, tokens_of, strict=True):
            coverage = sum(weight[t] for t in toks & terms) / total
            if coverage > 0:
                scored.append(Answer(text=p.text[s:e], score=coverage, passage=p, span=Span(s, e)))
        scored.sort(key=lambda a: a.score, reverse=True)
        answers = scored[:top_k]
        no_answer = not answers or answers[0].score < self.min_coverage
        return Reading(answers=answers, no_answer=no_answer)
