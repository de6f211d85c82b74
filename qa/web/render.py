"""The chat's HTML: pure functions of the pipeline's dataclasses.

Safety: every string that comes from a document (titles, passage text, answers) or from a user
(questions) is escaped with ``html.escape`` before it reaches the page, and the chat renders the
reply as HTML we build ourselves with Markdown and LaTeX rendering switched off, so a document that
contains ``<script>``, ``<img onerror=...>`` or Markdown links shows as plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from qa.schema import Answer, Hit, Passage, PipelineInfo, Response

MAX_CITED = 3
NO_ANSWER_TEXT = "文档中没有找到答案。"
NO_ANSWER_TEXT_EN = "The documents do not say."

CSS = """
/* Softer text still at 4.5:1 or more against the chat's bubbles (Gradio's subdued grey is not). */
:root { --ludao-subdued: #4b5563; }
.dark { --ludao-subdued: #c4c9d0; }
#ludao-send { --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412; --button-primary-text-color: #fff; }
footer .show-api, footer .settings, footer .built-with { color: var(--ludao-subdued) !important; }
.ludao-reply { line-height: 1.6; overflow-wrap: anywhere; }
.ludao-answer { font-size: 1.1em; }
.ludao-answer-text { font-weight: 700; }
.ludao-meta { color: var(--ludao-subdued); font-size: 0.85em; }
.ludao-no-answer { font-weight: 700; }
.ludao-sources { margin-top: 0.5em; }
.ludao-passage { border-left: 3px solid var(--border-color-accent, #ccc); padding: 0.2em 0.6em;
  margin: 0.4em 0; }
.ludao-cite { font-size: 0.85em; color: var(--ludao-subdued); }
.ludao-passage-text { white-space: pre-wrap; font-size: 0.95em; }
.ludao-reply mark { background: #ffe58f; color: #000; padding: 0 2px; border-radius: 2px; }
#ludao-info { font-size: 0.85em; color: var(--ludao-subdued); }
@media (max-width: 640px) {
  .ludao-passage-text { font-size: 0.9em; }
  #ludao-info { font-size: 0.78em; }
}
"""


def escape(value: object) -> str:
    """``str(value)`` safe to put in HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def highlight(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` in ``<mark>``; no mark for an empty span."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    if start == end:
        return escape(text)
    return f"{escape(text[:start])}<mark>{escape(text[start:end])}</mark>{escape(text[end:])}"


def _position(passage: Passage) -> str:
    if passage.page is not None:
        return f"第 {passage.page} 页 · p. {passage.page}"
    return f"字符 chars {passage.orig_start}–{passage.orig_end}"


def _confidence(score: float) -> str:
    level = "高 high" if score >= 0.7 else "中 medium" if score >= 0.4 else "低 low"
    return f"{score:.0%}（{level}）"


def _passage_html(number: int, passage: Passage, body: str, score: float | None = None) -> str:
    title = escape(passage.title or passage.doc_id)
    cite = f"[{number}] 《{title}》 · {escape(_position(passage))}"
    if score is not None:
        cite += f" · 相关度 relevance {score:.3f}"
    return (
        '<div class="ludao-passage">'
        f'<div class="ludao-cite">{cite}</div>'
        f'<div class="ludao-passage-text">{body}</div>'
        "</div>"
    )


def _cited(answers: Sequence[Answer]) -> list[Answer]:
    """The best answer of each distinct passage, best first, at most ``MAX_CITED``."""
    seen: set[str] = set()
    cited = []
    for answer in answers:
        if answer.passage.id not in seen:
            seen.add(answer.passage.id)
            cited.append(answer)
    return cited[:MAX_CITED]


def render_reply_html(response: Response) -> str:
    """The chat reply: answer, confidence, cited passages with the span marked; all escaped."""
    parts = ['<div class="ludao-reply">']
    if response.no_answer or not response.answers:
        parts.append(f'<div class="ludao-no-answer">{NO_ANSWER_TEXT} {NO_ANSWER_TEXT_EN}</div>')
        parts.append(render_interpreted_html(response))
        hits: Sequence[Hit] = response.hits[:MAX_CITED]
        if hits:
            parts.append(
                '<div class="ludao-sources"><div class="ludao-meta">'
                "最接近的段落 Closest passages</div>"
            )
            parts += [
                _passage_html(i, h.passage, escape(h.passage.text), h.score)
                for i, h in enumerate(hits, 1)
            ]
            parts.append("</div>")
    else:
        best = response.answers[0]
        parts.append(
            '<div class="ludao-answer">答案 Answer：'
            f'<span class="ludao-answer-text">{escape(best.text)}</span></div>'
            f'<div class="ludao-meta">置信度 Confidence：{_confidence(best.score)}</div>'
        )
        parts.append(render_interpreted_html(response))
        parts.append('<div class="ludao-sources"><div class="ludao-meta">出处 Sources</div>')
        parts += [
            _passage_html(i, a.passage, highlight(a.passage.text, a.span.start, a.span.end))
            for i, a in enumerate(_cited(response.answers), 1)
        ]
        parts.append("</div>")
        others = [a for a in response.answers[1:] if a.text != best.text][:3]
        if others:
            listed = "；".join(f"{escape(a.text)}（{a.score:.0%}）" for a in others)
            parts.append(f'<div class="ludao-meta">其他候选 Other candidates：{listed}</div>')
    total = response.timings_ms.get("total")
    footer = f"阅读器 reader: {escape(response.reader)}"
    if "cache" in response.timings_ms:
        footer += " · 已缓存 answered from cache"
    elif total is not None:
        footer += f" · {total:.0f} ms"
    parts.append(f'<div class="ludao-meta">{footer}</div></div>')
    return "".join(parts)


def render_interpreted_html(response: Response) -> str:
    """For a follow-up, the question actually answered ("理解为 …"), so a user can correct a
    wrong reading; nothing for a question that stood alone. Escaped: it holds user text."""
    if not response.interpreted_as:
        return ""
    return (
        '<div class="ludao-meta ludao-interpreted">理解为 Understood as：'
        f"{escape(response.interpreted_as)}</div>"
    )


def render_question_html(question: str) -> str:
    """A user's question as chat HTML (escaped: the chat renders HTML, not Markdown)."""
    return f'<div class="ludao-question">{escape(question)}</div>'


def render_error_html(message: str) -> str:
    """A failed question's message in the conversation (written for users; escaped anyway)."""
    return f'<div class="ludao-error">{escape(message)}</div>'


def render_info_html(info: PipelineInfo) -> str:
    """One line naming the loaded corpus, reader and embedding model (names, not server paths)."""
    corpus = ", ".join(Path(str(p)).name or str(p) for p in info.corpus or ()) or "?"
    documents = "?" if info.documents is None else info.documents
    passages = "?" if info.passages is None else info.passages
    counts = f"{documents} 篇文档 docs · {passages} 段 passages"
    reader = Path(str(info.reader)).name
    return (
        f"语料 Corpus：{escape(corpus)}（{escape(counts)}） · 阅读器 Reader：{escape(reader)}"
        f" · 向量模型 Embedding：{escape(info.embedding_model or '?')}"
    )
