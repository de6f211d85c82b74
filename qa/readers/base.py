"""The reader interface: read passages, return scored answer spans and a decision to decline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..schema import Answer, Passage


@dataclass(frozen=True)
class Reading:
    """What a reader found: candidate answers best first, and whether it declines to answer.

    Candidates are kept even when the reader declines, so a user can still see what came closest.
    The other fields say how the decision was reached, for calibration and benchmarks; a reader
    that has no such notion (the sentence baseline) leaves them ``None``.
    """

    answers: list[Answer]
    no_answer: bool
    best_score: float | None = None
    """Probability of the best answer (0.0 when there is none), the number the decision is on."""
    best_margin: float | None = None
    """Raw margin of the best span (``-inf`` when there is none): what calibration is fitted on."""
    tokens: int | None = None
    """Token positions the model ran over, padding included: the reader's cost."""
    early_exit: bool = False
    """The top passage alone was sure enough, so the other passages were not read."""


@runtime_checkable
class Reader(Protocol):
    """Anything that extracts answers from passages (the neural reader, the sentence baseline)."""

    name: str

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Reading: ...
