"""The follow-up resolver: does this turn lean on the previous one, and what does it stand for?

Rules, not a model, so that a decision can be explained and costs well under a millisecond:
jieba's part-of-speech tags say which words are names, places, times and attributes, and the
corpus's own text says how far a name reaches (天马 + 微电子 is one name when the documents write
"天马微电子"). Chinese rules live in :mod:`.chinese`, English ones in :mod:`.english`; this module
chains the turns and decides when nothing may be rewritten.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .chinese import rebuild as rebuild_chinese
from .english import rebuild as rebuild_english
from .history import MAX_HISTORY_TURNS, Turn

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u9fff]")
_MAX_CORPUS_CHARS = 20_000_000
"""Above this, name extension by corpus look-up is skipped (each look-up scans the text)."""


@dataclass(frozen=True)
class Resolution:
    """How a turn was understood.

    ``question`` is what to answer; ``interpreted_as`` is the same text when the turn was
    rebuilt from the history and ``None`` when it stood alone. ``rule`` names the rule that
    rebuilt it ("slot", "pronoun", "topic", "repeat"), for logs and evaluation.
    """

    question: str
    interpreted_as: str | None = None
    rule: str | None = None


class FollowUpResolver:
    """Rebuilds follow-up questions into self-contained ones, using the corpus's own text.

    Args:
        corpus_text: the indexed passages' text; lets a name be extended over the words the
            documents write with it. Empty: names are extended over nouns only.
    """

    def __init__(self, corpus_text: str = "") -> None:
        if len(corpus_text) > _MAX_CORPUS_CHARS:
            logger.info("corpus too large for name look-ups; resolving without it")
            corpus_text = ""
        self.corpus_text = corpus_text

    @classmethod
    def from_passages(cls, passages: Iterable[object]) -> FollowUpResolver:
        """A resolver over the text of ``passages`` (objects with a ``text``), repeats once."""
        seen: set[str] = set()
        texts = []
        for passage in passages:
            text = getattr(passage, "text", "")
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
        return cls("\n".join(texts))

    def resolve(self, question: str, history: Sequence[Turn | str] = ()) -> Resolution:
        """Understand ``question`` after ``history`` (oldest first).

        Earlier turns are resolved in order first, so the previous turn is always a complete
        question; only the last :data:`MAX_HISTORY_TURNS` count.
        """
        previous: Turn | None = None
        for item in list(history)[-MAX_HISTORY_TURNS:]:
            turn = Turn(item) if isinstance(item, str) else item
            resolved = self._resolve_one(turn.question, previous)
            previous = Turn(resolved.question, turn.answer)
        return self._resolve_one(question, previous)

    def _resolve_one(self, question: str, previous: Turn | None) -> Resolution:
        question = question.strip()
        if previous is None or not previous.question.strip():
            return Resolution(question)
        rebuild = rebuild_chinese if _CJK.search(question) else rebuild_english
        try:
            rebuilt = rebuild(question, previous, self.corpus_text)
        except Exception:  # a rule bug must never stop a question from being answered
            logger.exception("resolving %r after %r failed", question, previous.question)
            return Resolution(question)
        if rebuilt is None:
            return Resolution(question)
        text, rule = rebuilt
        if _same(text, question):
            return Resolution(question)
        logger.debug("follow-up %r understood as %r (%s)", question, text, rule)
        return Resolution(text, text, rule)


def _same(a: str, b: str) -> bool:
    strip = "?？!！。. "
    return a.strip().rstrip(strip) == b.strip().rstrip(strip)


_RESOLVERS: list[tuple[object, FollowUpResolver]] = []
_RESOLVERS_LOCK = threading.Lock()


def resolver_for(passages: Sequence[object]) -> FollowUpResolver:
    """The resolver over ``passages``, built once per passage list (checked with ``is``).

    A pipeline's passages are replaced, never mutated, when its index changes, so identity says
    when the corpus text must be gathered again; a few lists are kept for servers that hold
    several pipelines (a reload in progress, tests).
    """
    with _RESOLVERS_LOCK:
        for owner, resolver in _RESOLVERS:
            if owner is passages:
                return resolver
        resolver = FollowUpResolver.from_passages(passages)
        _RESOLVERS.insert(0, (passages, resolver))
        del _RESOLVERS[4:]
        return resolver
