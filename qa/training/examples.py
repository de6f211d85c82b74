"""One training question with its gold span: what the data readers, the code-switcher and the
held-out file share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpanExample:
    """One training question with its gold span inside its own paragraph."""

    id: str
    question: str
    context: str
    answer_start: int
    answer_text: str
    paragraph_key: str
    language: str
