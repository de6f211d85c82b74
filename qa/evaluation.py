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
"""

from __future__ import annotations

import json
import logging
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CMRC_PUNCTUATION",
    "QAExample",
    "answer_in_text",
    "cmrc_em",
    "cmrc_f1",
    "detect_language",
    "exact_match",
    "f1",
    "is_no_answer",
    "load_examples",
    "load_squad_paragraphs",
    "normalize_answer_en",
    "normalize_answer_zh",
    "percentile",
    "squad_em",
    "squad_f1",
]

logger = logging.getLogger(__name__)

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


def cmrc_em(prediction: str | None, golds: Iterable[str]) -> float:
    """CMRC 2018 exact match: 1.0 if the normalised prediction equals any normalised gold."""
    golds = _golds(golds)
    special = _no_answer_score(prediction, golds)
    if special is not None:
        return special
    assert prediction is not None
    normalized = normalize_answer_zh(prediction)
    return float(any(normalized == normalize_answer_zh(gold) for gold in golds))


def cmrc_f1(prediction: str | None, golds: Iterable[str]) -> float:
    """CMRC 2018 F1: longest-common-substring F1 over mixed tokens, max over the golds."""
    golds = _golds(golds)
    special = _no_answer_score(prediction, golds)
    if special is not None:
        return special
    assert prediction is not None
    return max(_cmrc_f1_single(prediction, gold) for gold in golds)


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


def squad_em(prediction: str | None, golds: Iterable[str]) -> float:
    """SQuAD v1.1 exact match, max over the golds."""
    golds = _golds(golds)
    special = _no_answer_score(prediction, golds)
    if special is not None:
        return special
    assert prediction is not None
    normalized = normalize_answer_en(prediction)
    return float(any(normalized == normalize_answer_en(gold) for gold in golds))


def squad_f1(prediction: str | None, golds: Iterable[str]) -> float:
    """SQuAD v1.1 bag-of-tokens F1, max over the golds."""
    golds = _golds(golds)
    special = _no_answer_score(prediction, golds)
    if special is not None:
        return special
    assert prediction is not None
    return max(_squad_f1_single(prediction, gold) for gold in golds)


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


# --- Evaluation data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QAExample:
    """One evaluation question; ``answers`` is empty when the documents do not answer it.

    ``context`` is the question's own paragraph for SQuAD-format files, ``None`` for JSONL.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    context: str | None = None
    title: str = ""


def load_examples(path: str | Path) -> list[QAExample]:
    """Read SQuAD-format JSON (each question keeps its paragraph) or JSONL question lines.

    JSONL lines are ``{"id", "question", "answers": [...]}``; ``answers`` may hold strings or
    SQuAD-style ``{"text": ...}`` objects, and an optional ``context``/``title`` is kept.
    Questions whose text is blank (the public CMRC 2018 trial set has two) are skipped with a
    warning.

    Raises:
        ValueError: the file is neither format, is malformed, repeats an id or holds no question.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".jsonl":
        parsed = _examples_from_jsonl(text, path)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # several lines of JSON: JSONL saved under another suffix
        if isinstance(data, dict) and "data" in data:
            parsed = _examples_from_squad(data, path)
        elif data is None or isinstance(data, dict):
            parsed = _examples_from_jsonl(text, path)
        else:
            raise ValueError(f"{path}: expected SQuAD-format JSON or JSONL question lines")
    examples = [example for example in parsed if example is not None]
    if len(examples) < len(parsed):
        logger.warning(
            "%s: skipped %d question(s) with blank text", path, len(parsed) - len(examples)
        )
    if not examples:
        raise ValueError(f"{path}: no questions found")
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise ValueError(f"{path}: question id {example.id!r} appears more than once")
        seen.add(example.id)
    return examples


def load_squad_paragraphs(path: str | Path) -> list[tuple[str, str]]:
    """The ``(paragraph id, context)`` pairs of a SQuAD-format file, identical contexts once.

    This is the corpus for open-domain evaluation over a file's own paragraphs. The id is the
    paragraph's ``id`` field where it has one (CMRC, DRCD), else ``p{article:04d}_{paragraph:03d}``.

    Raises:
        ValueError: the file is not SQuAD-format JSON.
    """
    path = Path(path)
    data = _read_squad(path)
    paragraphs: list[tuple[str, str]] = []
    seen_contexts: set[str] = set()
    used_ids: set[str] = set()
    for a, p, _title, paragraph in _iter_paragraphs(data, path):
        context = paragraph["context"]
        if context in seen_contexts:
            continue
        seen_contexts.add(context)
        pid = str(paragraph.get("id") or f"p{a:04d}_{p:03d}")
        if pid in used_ids:
            pid = f"{pid}#{a}.{p}"
        used_ids.add(pid)
        paragraphs.append((pid, context))
    return paragraphs


def _read_squad(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path}: not SQuAD-format JSON (no top-level 'data' list)")
    return data


def _iter_paragraphs(data: dict[str, Any], path: Path) -> Iterable[tuple[int, int, str, dict]]:
    """Yield ``(article index, paragraph index, title, paragraph)`` with the shape checked."""
    for a, article in enumerate(data["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise ValueError(f"{path}: data[{a}] has no 'paragraphs' list")
        title = str(article.get("title") or "")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise ValueError(f"{path}: {where} has no 'context' string")
            if not isinstance(paragraph.get("qas", []), list):
                raise ValueError(f"{path}: {where}.qas is not a list")
            yield a, p, title, paragraph


def _examples_from_squad(data: dict[str, Any], path: Path) -> list[QAExample | None]:
    if not isinstance(data.get("data"), list):
        raise ValueError(f"{path}: not SQuAD-format JSON ('data' is not a list)")
    examples: list[QAExample | None] = []
    for a, p, title, paragraph in _iter_paragraphs(data, path):
        for q, qa in enumerate(paragraph.get("qas", [])):
            where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
            examples.append(
                _make_example(qa, where, context=paragraph["context"], default_title=title)
            )
    return examples


def _examples_from_jsonl(text: str, path: Path) -> list[QAExample | None]:
    examples: list[QAExample | None] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error})") from error
        context = record.get("context") if isinstance(record, dict) else None
        if context is not None and not isinstance(context, str):
            raise ValueError(f"{where}: 'context' is not a string")
        examples.append(_make_example(record, where, context=context, default_title=""))
    return examples


def _make_example(
    record: Any, where: str, *, context: str | None, default_title: str
) -> QAExample | None:
    """Build one example, or ``None`` when the question text is blank."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object")
    qid, question, answers = record.get("id"), record.get("question"), record.get("answers")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
        raise ValueError(f"{where}: missing 'id'")
    if not isinstance(question, str):
        raise ValueError(f"{where}: missing 'question'")
    if not question.strip():
        return None
    if not isinstance(answers, list):
        raise ValueError(f"{where}: 'answers' must be a list (empty = unanswerable)")
    texts: list[str] = []
    for answer in answers:
        value = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(value, str):
            raise ValueError(f"{where}: each answer must be a string or an object with 'text'")
        if value.strip() and value not in texts:
            texts.append(value)
    title = record.get("title", default_title)
    return QAExample(
        id=str(qid),
        question=question,
        answers=tuple(texts),
        context=context,
        title=str(title or ""),
    )


# --- Summary statistics --------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation, like ``numpy.percentile``.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:  # also rejects NaN
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(values: Iterable[float], digits: int = 2) -> dict[str, float]:
    """p50, p95 and mean of a list of timings, rounded: the shape every benchmark reports."""
    values = list(values)
    return {
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(sum(values) / len(values), digits),
    }
