"""The earlier turns of a conversation, as every front end sends them, checked and bounded.

The HTTP API sends ``[{"question": ..., "answer": ...?}, ...]``, ``ludao eval`` lines and
``ludao ask --after`` send plain earlier questions, and the Gradio chat sends its own messages
(``[{"role": "user" | "assistant", "content": ...}]``, content being the HTML the chat rendered).
All become a list of :class:`Turn`, oldest first. Only the last :data:`MAX_HISTORY_TURNS` turns
matter to the resolver, and a turn's text is bounded, so a request cannot make the server parse
megabytes of history.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import QuestionError

MAX_HISTORY_TURNS = 20
"""Most turns a request may carry (the API refuses more; the chat sends its last ones)."""
MAX_TURN_CHARS = 500
"""Longest earlier question accepted (the pipeline's own question limit)."""
MAX_ANSWER_CHARS = 2000
"""Longest earlier answer accepted."""

_TAG = re.compile(r"<[^>]*>")
_ANSWER_SPAN = re.compile(r'<span class="ludao-answer-text">(.*?)</span>', re.S)


@dataclass(frozen=True)
class Turn:
    """One earlier question and, when known, the answer it got."""

    question: str
    answer: str | None = None


def parse_history(value: object, *, max_turns: int = MAX_HISTORY_TURNS) -> list[Turn]:
    """Check a history sent by a caller; each item is a question string or a turn object.

    Raises:
        QuestionError: not a list, too many turns, or a turn that is not text of a sane length.
    """
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise QuestionError("history must be a list of earlier turns")
    if len(value) > max_turns:
        raise QuestionError(f"history has {len(value)} turns; the limit is {max_turns}")
    turns = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, Turn):
            question, answer = item.question, item.answer
        elif isinstance(item, str):
            question, answer = item, None
        elif isinstance(item, dict):
            question, answer = item.get("question"), item.get("answer")
            unknown = set(item) - {"question", "answer"}
            if unknown:
                raise QuestionError(f"history turn {number} has unknown keys: {sorted(unknown)}")
        else:
            raise QuestionError(f"history turn {number} must be a string or an object")
        if not isinstance(question, str) or not question.strip():
            raise QuestionError(f"history turn {number} has no question")
        if answer is not None and not isinstance(answer, str):
            raise QuestionError(f"history turn {number}: the answer must be text")
        if len(question) > MAX_TURN_CHARS or len(answer or "") > MAX_ANSWER_CHARS:
            raise QuestionError(f"history turn {number} is too long")
        turns.append(Turn(question.strip(), (answer or "").strip() or None))
    return turns


def _text(content: object) -> str:
    """A chat message's text: a string, or Gradio's list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return " ".join(_text(part) for part in content)
    return ""


def _plain(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", markup)).strip()


def turns_from_chat(
    messages: Sequence[object], *, max_turns: int = MAX_HISTORY_TURNS
) -> list[Turn]:
    """The turns of a Gradio chat history (our rendered HTML, or plain text from a script).

    A user message starts a turn; the assistant message after it gives the turn's answer (the
    highlighted answer text of our reply; none for a "the documents do not say" reply or an
    error). Anything malformed is skipped rather than refused: the chat is our own page.
    """
    turns: list[Turn] = []
    for message in messages or ():
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), _text(message.get("content"))
        if role == "user":
            question = _plain(content)[:MAX_TURN_CHARS]
            if question:
                turns.append(Turn(question))
        elif role == "assistant" and turns and turns[-1].answer is None:
            found = _ANSWER_SPAN.search(content)
            if found is not None:
                answer = _plain(found.group(1))
            elif "<" not in content:
                answer = content.strip()  # a script's plain-text answer
            else:
                answer = ""
            if answer:
                turns[-1] = Turn(turns[-1].question, answer[:MAX_ANSWER_CHARS])
    return turns[-max_turns:]


def ask_options(turns: Sequence[Turn]) -> dict[str, list[Turn]]:
    """``{"history": turns}`` for ``Pipeline.ask`` when there are turns, else ``{}``: a pipeline
    that predates conversations (a test double, a plug-in) is then called exactly as before."""
    return {"history": list(turns)} if turns else {}


def load_history_file(path: str | Path) -> list[Turn]:
    """Earlier turns from a file: a JSON list, or JSONL lines (a question string or a turn).

    Raises:
        QuestionError: unreadable, not JSON, or turns that :func:`parse_history` refuses.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise QuestionError(f"cannot read the history file {path}: {error}") from error
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise QuestionError(f"{path}: neither a JSON list nor JSONL ({error})") from error
    return parse_history(items)


def fill_answers(turns: Sequence[Turn], ask: Callable[[str, list[Turn]], Any]) -> list[Turn]:
    """The turns, each without an answer given the one ``ask`` finds, asked in order as in a chat.

    ``ask(question, earlier_turns)`` returns a ``Response``; where it declines, the turn keeps no
    answer. Used where only the earlier questions are known (``ludao ask --after``, ``ludao eval``
    lines), so that "他/它" can point at what the conversation actually answered.
    """
    done: list[Turn] = []
    for turn in turns:
        if turn.answer is None:
            response = ask(turn.question, list(done))
            answers = getattr(response, "answers", None)
            if answers and not getattr(response, "no_answer", False):
                turn = Turn(turn.question, answers[0].text)
        done.append(turn)
    return done


def conversation_turns(
    pipeline: Any,
    after: Sequence[str] = (),
    history_file: str | Path | None = None,
    *,
    top_k: int | None = None,
) -> list[Turn]:
    """The earlier turns of ``ludao ask``: the file's, then ``--after`` questions, answered by
    ``pipeline`` where the file gives no answer (as the chat would have answered them)."""
    turns = load_history_file(history_file) if history_file else []
    turns = parse_history([*turns, *after])

    def ask(question: str, earlier: list[Turn]) -> Any:
        return pipeline.ask(question, top_k=top_k, **ask_options(earlier))

    return fill_answers(turns, ask)
