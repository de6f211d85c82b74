"""English follow-ups: "And in 2020?", "What about Tianma?", "Who is its president?".

Names are runs of capitalised words (not the question's first word when that is a question
word); years are four digits. Questions without a subject of their own are left alone in
English: without part-of-speech tags the risk of rewriting a complete question is too high.
"""

from __future__ import annotations

import re

from .history import Turn

ELLIPSIS = re.compile(
    r"^(?:and|what about|how about|and what about|same for|what of)\s+(?:in|for|of|at|on)?\s*"
    r"(?P<slot>.+?)\s*$",
    re.I,
)
PRONOUN = re.compile(r"\b(its|their|his|her|it|they|he|she|him|them)\b", re.I)
POSSESSIVE = frozenset({"its", "their", "his", "her"})
PERSON = frozenset({"his", "her", "he", "she", "him"})
YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
NAME = re.compile(r"\b[A-Z][\w&.\-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w&.\-]*)*")
QUESTION_WORDS = frozenset(
    [
        "what",
        "who",
        "whom",
        "whose",
        "which",
        "when",
        "where",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
    ]
)
END = "?？!. "


def _names(text: str) -> list[tuple[int, int]]:
    found = []
    for match in NAME.finditer(text):
        start, end = match.start(), match.end()
        first = match.group().split()[0]
        if start == 0 and first.lower() in QUESTION_WORDS:
            rest = match.group()[len(first) :].lstrip()
            if not rest:
                continue
            start = end - len(rest)
        found.append((start, end))
    return found


def _referent(previous: Turn, pronoun: str) -> str:
    asked = previous.question.strip()
    first = asked.split()[0].lower() if asked.split() else ""
    if previous.answer and len(previous.answer) <= 60 and first in {"who", "which", "whom"}:
        return previous.answer
    names = _names(asked)
    return asked[names[0][0] : names[0][1]] if names else ""


def rebuild(question: str, previous: Turn, corpus: str = "") -> tuple[str, str] | None:
    """The self-contained question after ``previous``, and the rule; ``None`` if it stands alone."""
    core = question.strip().rstrip(END)
    last = previous.question.strip().rstrip(END)
    ellipsis = ELLIPSIS.match(core)
    if ellipsis is not None:
        slot = ellipsis.group("slot")
        if YEAR.fullmatch(slot):
            found = YEAR.search(last)
            rebuilt = YEAR.sub(slot, last, count=1) if found else f"{last} in {slot}"
            return rebuilt + "?", "slot"
        names = _names(last)
        if names and slot[:1].isupper():
            start, end = names[-1]
            return last[:start] + slot + last[end:] + "?", "slot"
        return None
    match = PRONOUN.search(core)
    if match is None or _names(core[: match.start()]):
        return None
    pronoun = match.group().lower()
    referent = _referent(previous, pronoun)
    if not referent:
        return None
    replacement = f"{referent}'s" if pronoun in POSSESSIVE else referent
    if pronoun == "her" and not re.match(r"\s+[a-z]", core[match.end() :]):
        replacement = referent  # "ask her" is an object, not a possessive
    return core[: match.start()] + replacement + core[match.end() :] + "?", "pronoun"
