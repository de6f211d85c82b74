"""The reader interface: read passages, return scored answer spans and a decision to decline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..schema import Answer, Passage


@dataclass(frozen=True)
class Reading:
    """What a reader found: candidate answers best first, and whether it declines to answer.

    Candidates are kept even when the reader declines, so a user can still see what came closest.
    """

    answers: list[Answer]
    no_answer: bool
    details: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Reader(Protocol):
    """Anything that extracts answers from passages (the neural reader, the sentence baseline)."""

    name: str

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Reading: ...
