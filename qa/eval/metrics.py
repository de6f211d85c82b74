"""Scoring answers against gold answers, and loading evaluation files.

Chinese answers are scored the way the official CMRC 2018 evaluation script scores them:

- lower-case, strip the ends, and drop the script's punctuation list (``CMRC_PUNCTUATION``);
- for F1, segment "mixed": every CJK character (U+4E00–U+9FA5, the script's range) is a token,
  while runs of other characters are split into words (the script uses ``nltk.word_tokenize``;
  ``_tokenize_latin`` approximates it without nltk: numbers such as ``3.46`` or ``1,000`` stay one
  token, letter/digit runs are one token, any other symbol such as ``%`` is a token of its own);
- F1 comes from the longest common *substring* (contiguous) of the two token lists;
- EM compares the normalised strings; both take the maximum over the gold answers.

Note that the official punctuation list is short: it has ``-:_*^/\\~`+=`` and common full-width
marks, but not ``%``, ``.``, ``,``, ``(``, ``)``, ``‘`` or the em dash ``—``, and its ``……`` entry
is two characters long, so a single ``…`` is never removed. Those characters therefore count, and
internal whitespace counts for EM. ``"3.46"`` against ``"3.46%"`` is EM 0, F1 2/3.

English answers are scored like SQuAD v1.1 (lower-case, drop ASCII punctuation and the articles
a/an/the, whitespace tokens, bag-of-tokens F1). ``exact_match``/``f1`` pick the metric from the
language of the gold answers.

Unanswerable questions have no gold answers: a prediction scores 1.0 when it is empty (no answer)
and 0.0 otherwise; an empty prediction for an answerable question scores 0.0.

Retrieval is scored from the same answers: a passage is relevant when it holds a gold answer
(``answer_in_text``), and ``relevant_rank`` / ``has_relevant_passage`` give recall@k and MRR.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal

__all__ = [
    "CMRC_PUNCTUATION",
    "AnswerScore",
    "Language",
    "answer_in_text",
    "cmrc_em",
    "cmrc_f1",
    "detect_language",
    "exact_match",
    "f1",
    "has_relevant_passage",
    "is_boundary_error",
    "is_no_answer",
    "normalize_answer_en",
    "normalize_answer_zh",
    "relevant_rank",
    "score_answer",
    "scoring_language",
    "squad_em",
    "squad_f1",
]


Language = Literal["zh", "en"]

# The official CMRC 2018 list. Its two-character "……" entry never matches a single character, so
# it is left out: keeping it would change nothing.
CMRC_PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")

_CMRC_CJK = re.compile(r"[\u4e00-\u9fa5]")
# Broader than the CMRC segmentation range: extension A, unified ideographs, compatibility forms.
_ANY_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+|\S")
_WHITESPACE = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


# --- No-answer handling -------------------------------------------------------------------------


def is_no_answer(prediction: str | None) -> bool:
    """Whether a prediction means "the documents do not say": ``None`` or blank."""
    return prediction is None or not prediction.strip()


def _golds(golds: Iterable[str]) -> tuple[str, ...]:
    """Gold answers without blank strings (a list of only blanks marks an unanswerable question)."""
    if isinstance(golds, str):
        raise TypeError("golds must be a list of answer strings, not a single string")
    return tuple(g for g in golds if g.strip())


def _no_answer_score(prediction: str | None, golds: tuple[str, ...]) -> float | None:
    """The score when either side is empty, or ``None`` when both must be compared."""
    if not golds:
        return 1.0 if is_no_answer(prediction) else 0.0
    if is_no_answer(prediction):
        return 0.0
    return None


# --- Chinese: the CMRC 2018 metric ---------------------------------------------------------------


def normalize_answer_zh(text: str) -> str:
    """CMRC 2018 EM normalisation: lower-case, strip the ends, drop ``CMRC_PUNCTUATION``."""
    return "".join(ch for ch in text.lower().strip() if ch not in CMRC_PUNCTUATION)


def _tokenize_latin(run: str) -> list[str]:
    """Split a run of non-CJK text into words (a dependency-free stand-in for nltk's tokenizer)."""
    return _LATIN_TOKEN.findall(run)


def _segment_zh(text: str) -> list[str]:
    """CMRC 2018 mixed segmentation with punctuation removed: CJK characters, then words."""
    tokens: list[str] = []
    run: list[str] = []
    for ch in text.lower().strip():
        if ch in CMRC_PUNCTUATION or _CMRC_CJK.match(ch):
            if run:
                tokens.extend(_tokenize_latin("".join(run)))
                run = []
            if ch not in CMRC_PUNCTUATION:
                tokens.append(ch)
        else:
            run.append(ch)
    if run:
        tokens.extend(_tokenize_latin("".join(run)))
    return tokens


def _longest_common_substring(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous run of tokens shared by ``a`` and ``b``."""
    best = 0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b, start=1):
            if token == other:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def _cmrc_f1_single(prediction: str, gold: str) -> float:
    pred_tokens = _segment_zh(prediction)
    gold_tokens = _segment_zh(gold)
    common = _longest_common_substring(gold_tokens, pred_tokens)
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_over_golds(
    prediction: str | None, golds: Iterable[str], score_one: Callable[[str, str], float]
) -> float:
    """Both official scripts score against every gold answer and keep the best; a no-answer
    prediction or gold list is decided before any text is compared."""
    golds = _golds(golds)
    special = _no_answer_score(prediction, golds)
    if special is not None:
        return special
    assert prediction is not None
    return max(score_one(prediction, gold) for gold in golds)


def _cmrc_em_single(prediction: str, gold: str) -> float:
    return float(normalize_answer_zh(prediction) == normalize_answer_zh(gold))


def cmrc_em(prediction: str | None, golds: Iterable[str]) -> float:
    """CMRC 2018 exact match: 1.0 if the normalised prediction equals any normalised gold."""
    return _best_over_golds(prediction, golds, _cmrc_em_single)


def cmrc_f1(prediction: str | None, golds: Iterable[str]) -> float:
    """CMRC 2018 F1: longest-common-substring F1 over mixed tokens, max over the golds."""
    return _best_over_golds(prediction, golds, _cmrc_f1_single)


# --- English: the SQuAD v1.1 metric --------------------------------------------------------------


def normalize_answer_en(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop punctuation and articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _squad_f1_single(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer_en(prediction).split()
    gold_tokens = normalize_answer_en(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _squad_em_single(prediction: str, gold: str) -> float:
    return float(normalize_answer_en(prediction) == normalize_answer_en(gold))


def squad_em(prediction: str | None, golds: Iterable[str]) -> float:
    """SQuAD v1.1 exact match, max over the golds."""
    return _best_over_golds(prediction, golds, _squad_em_single)


def squad_f1(prediction: str | None, golds: Iterable[str]) -> float:
    """SQuAD v1.1 bag-of-tokens F1, max over the golds."""
    return _best_over_golds(prediction, golds, _squad_f1_single)


# --- Language-aware entry points -----------------------------------------------------------------


def detect_language(text: str) -> Language:
    """``"zh"`` if the text holds any CJK ideograph, else ``"en"``."""
    return "zh" if _ANY_CJK.search(text) else "en"


def _language_of(golds: tuple[str, ...], language: Language | None) -> Language:
    if language is not None:
        return language
    return "zh" if any(detect_language(gold) == "zh" for gold in golds) else "en"


def exact_match(
    prediction: str | None, golds: Iterable[str], *, language: Language | None = None
) -> float:
    """Exact match with the metric of ``language`` (by default: zh if any gold is Chinese).

    Pass ``language`` when the whole data set is in one language, so that a Latin-only answer in
    a Chinese data set (``"iPhone"``, ``"1998"``) is still scored with the CMRC metric.
    """
    golds = _golds(golds)
    if _language_of(golds, language) == "zh":
        return cmrc_em(prediction, golds)
    return squad_em(prediction, golds)


def f1(prediction: str | None, golds: Iterable[str], *, language: Language | None = None) -> float:
    """F1 with the metric of ``language`` (by default: zh if any gold is Chinese)."""
    golds = _golds(golds)
    if _language_of(golds, language) == "zh":
        return cmrc_f1(prediction, golds)
    return squad_f1(prediction, golds)


def answer_in_text(answer: str, text: str) -> bool:
    """Whether ``answer`` occurs in ``text`` once all whitespace is removed from both.

    Used for recall@k: a retrieved passage counts when it holds a gold answer. Blank answers
    never count.
    """
    needle = _WHITESPACE.sub("", answer)
    return bool(needle) and needle in _WHITESPACE.sub("", text)


# --- One answer, scored the way every report scores it --------------------------------------------


@dataclass(frozen=True)
class AnswerScore:
    """Exact match and F1 of one prediction, each in [0, 1]."""

    exact_match: float
    f1: float


def scoring_language(question: str, golds: Iterable[str]) -> Language:
    """The metric for answers to ``question``: its language, except that Chinese gold answers
    to an English question (English questions over Chinese text) are scored as Chinese."""
    language = detect_language(question)
    if language == "en" and any(detect_language(g) == "zh" for g in golds):
        return "zh"
    return language


def score_answer(
    prediction: str | None,
    golds: Iterable[str],
    *,
    question: str | None = None,
    language: Language | None = None,
) -> AnswerScore:
    """EM and F1 of ``prediction``, with the metric of the question's language.

    The question's language picks the metric, as the official scripts do per data set: in CMRC
    every answer, "1998" included, is scored with the CMRC metric. Chinese gold answers to an
    English question (XQuAD's English questions over its Chinese paragraphs) are scored with the
    CMRC metric too: the metric follows the text the answer is cut from. ``ludao eval`` and every
    benchmark score answers through this one function so that their numbers agree. An explicit
    ``language`` wins over ``question``; with neither, the golds decide (see ``exact_match``).
    """
    golds = _golds(golds)
    if language is None and question is not None:
        language = scoring_language(question, golds)
    return AnswerScore(
        exact_match=exact_match(prediction, golds, language=language),
        f1=f1(prediction, golds, language=language),
    )


def is_boundary_error(
    prediction: str | None,
    golds: Iterable[str],
    *,
    question: str | None = None,
) -> bool:
    """Whether a wrong answer is wrong only at its edges: it is not an exact match, but once
    normalised it contains a gold answer or lies inside one (the answer is found, its span is
    too long or too short). The share of these among wrong answers is what boundary decoding
    can win back."""
    golds = _golds(golds)
    if is_no_answer(prediction) or not golds:
        return False
    language = scoring_language(question, golds) if question is not None else None
    assert prediction is not None
    if exact_match(prediction, golds, language=language):
        return False
    normalize = normalize_answer_en if language == "en" else normalize_answer_zh
    guess = normalize(prediction)
    return any(
        g and guess and (g in guess or guess in g) for g in (normalize(gold) for gold in golds)
    )


# --- Retrieval: is a gold answer among the passages? ----------------------------------------------


def relevant_rank(
    golds: Iterable[str], passage_texts: Iterable[str], *, k: int | None = None
) -> int | None:
    """1-based rank of the first passage that holds a gold answer (``answer_in_text``).

    Only the first ``k`` passages are looked at when ``k`` is given; ``None`` when none of them
    holds an answer (always so for an unanswerable question). recall@k counts ranks <= k, and
    MRR averages 1 / rank.
    """
    golds = _golds(golds)
    texts = passage_texts if k is None else islice(passage_texts, k)
    for rank, text in enumerate(texts, start=1):
        if any(answer_in_text(gold, text) for gold in golds):
            return rank
    return None


def has_relevant_passage(
    golds: Iterable[str], passage_texts: Iterable[str], *, k: int | None = None
) -> bool:
    """Whether one of the first ``k`` passages (all, by default) holds a gold answer."""
    return relevant_rank(golds, passage_texts, k=k) is not None
