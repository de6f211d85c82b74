"""BM25 as sparse vectors: the passage side stored once, the IDF side computed per query.

Milvus ranks a sparse field by inner product, so BM25 (Lucene variant, as ``bm25s`` computes it
for the FAISS store: ``k1=1.5``, ``b=0.75``) is split into its two factors:

- the passage vector holds, per jieba term (``qa.search_terms``), the term-frequency part
  ``tf / (tf + k1 * (1 - b + b * len / avglen))``; it depends only on the passage and on the
  average passage length;
- the query vector holds ``idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))`` for each distinct
  query term, computed at query time from the term statistics kept in the store.

So the IDF is never frozen into stored vectors: adding or removing documents changes ``N`` and the
document frequencies (kept as counts in the store, adjusted by every update) and the very next
query uses them. Only the average length is baked into passage vectors; an update that moves it
by more than :data:`AVGLEN_TOLERANCE` rewrites every passage's sparse vector from its text, and
that full pass also recounts the statistics exactly.

Terms become sparse dimensions through a stable 32-bit hash, so every process maps a term to the
same dimension without a shared vocabulary; two terms that collide share a weight (about one pair
in 4,000 for a million-term vocabulary), which perturbs BM25 slightly and never breaks it.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from qa.search_terms import tokenize_for_search

K1 = 1.5
B = 0.75
AVGLEN_TOLERANCE = 0.01
"""Relative drift of the average passage length after which stored weights are rewritten."""


def term_id(term: str) -> int:
    """The sparse dimension of ``term``: 32 bits of its BLAKE2b hash, never 0 (kept free)."""
    value = int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")
    return value % 0xFFFFFFFE + 1


@dataclass(frozen=True)
class PassageTerms:
    """A passage's term counts by sparse dimension, and its length in tokens."""

    counts: dict[int, int]
    length: int

    @classmethod
    def of(cls, text: str) -> PassageTerms:
        tokens = tokenize_for_search(text)
        return cls(counts=dict(Counter(term_id(t) for t in tokens)), length=len(tokens))

    def weights(self, avglen: float) -> dict[int, float]:
        """The stored sparse vector: the term-frequency part of BM25 for each term."""
        if not self.counts:
            return {}
        norm = K1 * (1 - B + B * self.length / avglen) if avglen > 0 else K1
        return {t: tf / (tf + norm) for t, tf in self.counts.items()}


@dataclass
class TermStats:
    """Corpus statistics BM25 needs: passage count, total length, document frequency per term."""

    passages: int = 0
    total_length: int = 0
    df: dict[int, int] = field(default_factory=dict)

    @property
    def avglen(self) -> float:
        return self.total_length / self.passages if self.passages else 0.0

    def add(self, terms: Iterable[PassageTerms], sign: int = 1) -> set[int]:
        """Count passages in (``sign=1``) or out (``-1``); returns the terms whose df changed."""
        touched: set[int] = set()
        for item in terms:
            self.passages += sign
            self.total_length += sign * item.length
            for t in item.counts:
                self.df[t] = self.df.get(t, 0) + sign
                touched.add(t)
        return touched


def idf(df: int, passages: int) -> float:
    """Lucene's BM25 IDF, always positive."""
    return math.log(1 + (passages - df + 0.5) / (df + 0.5))


def query_vector(query: str, df: Mapping[int, int], passages: int) -> dict[int, float]:
    """IDF per distinct query term that occurs in the store; ``{}`` when none does.

    A repeated query term counts once and a term no passage holds is dropped, as with ``bm25s``.
    """
    terms = dict.fromkeys(term_id(t) for t in tokenize_for_search(query))
    return {t: idf(df[t], passages) for t in terms if df.get(t, 0) > 0}


def needs_rewrite(stored_avglen: float, current_avglen: float) -> bool:
    """Whether stored passage weights used an average length too far from the current one."""
    if current_avglen <= 0:
        return False
    if stored_avglen <= 0:
        return True
    return abs(stored_avglen - current_avglen) / current_avglen > AVGLEN_TOLERANCE
