"""Evaluation question files: SQuAD-format JSON (CMRC 2018, DRCD, XQuAD) and JSONL lines.

A SQuAD file carries its own paragraphs, so each question keeps its context (gold-passage mode)
and the paragraphs can become a corpus of their own (``load_squad_paragraphs``). A JSONL line is
``{"id", "question", "answers": [...]}``; an empty ``answers`` list marks a question the
documents do not answer.

``SEED_QUESTIONS`` is the hand-written development set about the default corpus article; it
ships inside the package because ``ludao bench`` asks it by default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..conversation import Turn, parse_history
from ..errors import QuestionError

__all__ = ["SEED_QUESTIONS", "QAExample", "load_examples", "load_squad_paragraphs"]

logger = logging.getLogger(__name__)

SEED_QUESTIONS = Path(__file__).resolve().parent / "data" / "seed_questions.jsonl"


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
    history: tuple[Turn, ...] = ()
    """Earlier turns of a conversation this question follows (JSONL ``"history"``), oldest first."""


def reworded(examples: list[QAExample], wording: list[QAExample]) -> list[QAExample]:
    """``examples`` asked with the question of the same id in ``wording`` (a parallel file in
    another language); paragraphs and gold answers stay those of ``examples``."""
    by_id = {w.id: w.question for w in wording}
    missing = [e.id for e in examples if e.id not in by_id]
    if missing:
        raise ValueError(
            f"{len(missing)} questions have no counterpart in the parallel file "
            f"(first: {missing[0]!r}); both files must share question ids"
        )
    return [replace(e, question=by_id[e.id]) for e in examples]


def load_examples(path: str | Path) -> list[QAExample]:
    """Read SQuAD-format JSON (each question keeps its paragraph) or JSONL question lines.

    JSONL lines are ``{"id", "question", "answers": [...]}``; ``answers`` may hold strings or
    SQuAD-style ``{"text": ...}`` objects, and an optional ``context``/``title`` is kept, as is
    ``history`` (earlier questions, or ``{"question", "answer"}`` turns) for a follow-up.
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
    try:
        history = tuple(parse_history(record.get("history")))
    except QuestionError as error:
        raise ValueError(f"{where}: {error}") from error
    return QAExample(
        id=str(qid),
        question=question,
        answers=tuple(texts),
        context=context,
        title=str(title or ""),
        history=history,
    )
