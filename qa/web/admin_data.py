"""What the admin page shows, computed from the index manifest and the records, without Gradio.

Kept apart from ``qa.web.admin_page`` so each number can be tested on records made in a test:
the document list (name, groups, passages, pages, added, size), the usage figures per day
(questions, declined-answer rate, share of answers under a confidence threshold), the ratings,
the most-asked questions, the table of disliked or declined questions with the answer given and
the passages cited (HTML, everything escaped), and their export as a ``ludao eval`` file.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.web.render import escape

if TYPE_CHECKING:
    import pandas as pd

    from qa.feedback import FeedbackRecord
    from qa.usage import UsageRecord

__all__ = [
    "DocumentTable",
    "Flagged",
    "document_table",
    "export_lines",
    "flagged_html",
    "flagged_questions",
    "summary_html",
    "usage_figures",
]

FILL_IN = (
    "Fill in 'answers' with the right answer(s) as the documents word them; leave it empty if "
    "the documents do not say. Then: ludao eval THIS_FILE --json"
)


@dataclass(frozen=True)
class DocumentTable:
    """The documents of the served index and those removed from it, or why there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def document_table(index_dir: str | None) -> DocumentTable:
    """Rows for the admin's document list, read from the manifest at ``index_dir``."""
    from qa.errors import LudaoError
    from qa.index import list_documents
    from qa.index.labels import saved_groups
    from qa.index.store import read_manifest

    if not index_dir or not Path(index_dir).is_dir():
        return DocumentTable(message="the documents are in a shared vector store; see ludao docs")
    try:
        listing = list_documents(Path(index_dir))
        groups = saved_groups(read_manifest(Path(index_dir)))
    except (LudaoError, OSError, ValueError) as exc:
        return DocumentTable(message=str(exc))
    rows = [
        {
            "id": d.id,
            "name": Path(d.source).name if d.source else d.id,
            "groups": ", ".join(sorted(groups.get(d.id, {"everyone"}))),
            "passages": d.passages,
            "pages": d.pages if d.pages is not None else "",
            "added": (d.indexed or "")[:19].replace("T", " "),
            "size": _size(d.size),
        }
        for d in listing.documents
    ]
    removed = [
        {
            "id": e.id,
            "name": Path(e.source).name if e.source else e.id,
            "removed": (e.removed or "")[:19].replace("T", " "),
        }
        for e in listing.excluded
    ]
    return DocumentTable(rows=rows, removed=removed)


def _size(size: int | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def table_html(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, elem_id: str, empty: str
) -> str:
    """An HTML table of ``rows`` (every cell escaped), or ``empty`` as a paragraph."""
    if not rows:
        return f"<p id='{escape(elem_id)}' class='ludao-meta'>{escape(empty)}</p>"
    head = "".join(f"<th scope='col'>{escape(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(row.get(key, ''))}</td>" for key, _ in columns) + "</tr>"
        for row in rows
    )
    return (
        f"<table id='{escape(elem_id)}' class='ludao-admin-table'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _day(time: str) -> str:
    return (time or "")[:10] or "unknown"


def usage_figures(
    usage: Sequence[UsageRecord],
    feedback: Sequence[FeedbackRecord],
    *,
    threshold: float = 0.5,
    top: int = 10,
) -> dict[str, pd.DataFrame | dict[str, Any]]:
    """DataFrames for the plots and a summary.

    Returns ``per_day`` (day, questions, declined_rate, low_confidence_share), ``ratings``
    (rating, count), ``ratings_per_day`` (day, rating, count), ``top_questions`` (question,
    count) and ``summary`` (totals and rates; ``None`` where nothing was counted). An answer is
    under the threshold when the reader gave one with a score below ``threshold``; declined
    answers are counted apart.
    """
    import pandas as pd

    days: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in usage:
        days[_day(record.time)].append(record)
    per_day = pd.DataFrame(
        [
            {
                "day": day,
                "questions": len(rows),
                "declined_rate": round(sum(r.no_answer for r in rows) / len(rows), 4),
                "low_confidence_share": round(sum(_low(r, threshold) for r in rows) / len(rows), 4),
            }
            for day, rows in sorted(days.items())
        ],
        columns=["day", "questions", "declined_rate", "low_confidence_share"],
    )
    ratings = Counter(r.rating for r in feedback if r.rating in ("like", "dislike"))
    per_day_ratings = Counter(
        (_day(r.time), r.rating) for r in feedback if r.rating in ("like", "dislike")
    )
    asked = Counter(_normalise(r.question) for r in usage)
    shown = {}
    for r in usage:
        shown.setdefault(_normalise(r.question), r.question.strip())
    answered = sum(not r.no_answer for r in usage)
    summary = {
        "questions": len(usage),
        "likes": ratings["like"],
        "dislikes": ratings["dislike"],
        "like_ratio": _ratio(ratings["like"], ratings["like"] + ratings["dislike"]),
        "declined_rate": _ratio(sum(r.no_answer for r in usage), len(usage)),
        "low_confidence_share": _ratio(sum(_low(r, threshold) for r in usage), answered),
        "threshold": threshold,
    }
    return {
        "per_day": per_day,
        "ratings": pd.DataFrame(
            [{"rating": k, "count": ratings[k]} for k in ("like", "dislike")],
            columns=["rating", "count"],
        ),
        "ratings_per_day": pd.DataFrame(
            [{"day": d, "rating": k, "count": n} for (d, k), n in sorted(per_day_ratings.items())],
            columns=["day", "rating", "count"],
        ),
        "top_questions": pd.DataFrame(
            [{"question": _short(shown[q]), "count": n} for q, n in asked.most_common(top)],
            columns=["question", "count"],
        ),
        "summary": summary,
    }


def _low(record: UsageRecord, threshold: float) -> bool:
    return not record.no_answer and record.top_score is not None and record.top_score < threshold


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _normalise(question: str) -> str:
    return re.sub(r"[\s?？!！。.,，]+", "", question).lower()


def _short(question: str, limit: int = 40) -> str:
    question = question.strip()
    return question if len(question) <= limit else question[: limit - 1] + "…"


@dataclass(frozen=True)
class Flagged:
    """A question to look at: disliked (a rating) or declined (the reader said nothing)."""

    time: str
    user: str
    reason: str
    """``"disliked"`` or ``"declined"``."""
    question: str
    answer: str | None
    passages: tuple[dict[str, Any], ...]
    """``{"id", "title"?, "text"?}``: the text is known for chat ratings, ids only otherwise."""


def flagged_questions(
    usage: Iterable[UsageRecord], feedback: Iterable[FeedbackRecord], *, limit: int = 200
) -> list[Flagged]:
    """Disliked and declined questions, newest first, each question once (its newest record)."""
    items = [
        Flagged(
            time=r.time,
            user=r.user,
            reason="disliked",
            question=r.question,
            answer=r.answer,
            passages=tuple(
                {"id": p.get("id", ""), "title": p.get("title", ""), "text": p.get("text", "")}
                for p in r.passages
            )
            or tuple({"id": i} for i in r.passage_ids),
        )
        for r in feedback
        if r.rating == "dislike"
    ]
    items += [
        Flagged(
            time=r.time,
            user=r.user,
            reason="declined",
            question=r.question,
            answer=None,
            passages=tuple({"id": i} for i in r.passage_ids),
        )
        for r in usage
        if r.no_answer
    ]
    items.sort(key=lambda f: f.time, reverse=True)
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:
        key = (_normalise(item.question), item.reason)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique[:limit]


def flagged_html(items: Sequence[Flagged]) -> str:
    """The flagged questions as an HTML table; questions, answers and passages escaped."""
    if not items:
        return (
            "<p id='admin-flagged' class='ludao-meta'>"
            "没有差评或拒答。No disliked or declined questions yet.</p>"
        )
    rows = []
    for item in items:
        cited = "".join(
            f"<li><code>{escape(p.get('id', ''))}</code>"
            + (f" {escape(p['title'])}" if p.get("title") else "")
            + (f"<br>{escape(_short(p['text'], 160))}" if p.get("text") else "")
            + "</li>"
            for p in item.passages[:3]
        )
        answer = escape(item.answer) if item.answer else "<em>文档未提及 (declined)</em>"
        rows.append(
            f"<tr><td>{escape(item.time[:16].replace('T', ' '))}</td><td>{escape(item.user)}</td>"
            f"<td>{escape(item.reason)}</td><td>{escape(item.question)}</td><td>{answer}</td>"
            f"<td><ul>{cited}</ul></td></tr>"
        )
    head = "".join(
        f"<th scope='col'>{h}</th>"
        for h in (
            "时间 Time",
            "用户 User",
            "原因 Why",
            "问题 Question",
            "回答 Answer given",
            "引用 Passages cited",
        )
    )
    return (
        "<table id='admin-flagged' class='ludao-admin-table'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def export_lines(items: Sequence[Flagged]) -> list[str]:
    """One ``ludao eval`` JSONL line per flagged question, ``answers`` left to be filled in.

    ``answers: []`` is what ``ludao eval`` reads as "the documents do not say", so an unedited
    file is already a valid regression set (a declined question stays declined); the answer
    given, the reason and the cited passages travel along for whoever fills it in.
    """
    lines = []
    for number, item in enumerate(items, 1):
        record = {
            "id": f"feedback-{number:04d}",
            "question": item.question,
            "answers": [],
            "given_answer": item.answer,
            "reason": item.reason,
            "asked": item.time,
            "passage_ids": [p.get("id", "") for p in item.passages],
            "note": FILL_IN,
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def summary_html(summary: dict[str, Any]) -> str:
    cells = [
        ("问题 Questions", str(summary["questions"])),
        ("赞/踩 Likes/dislikes", f"{summary['likes']} / {summary['dislikes']}"),
        ("好评率 Like ratio", _percent(summary["like_ratio"])),
        ("拒答率 Declined", _percent(summary["declined_rate"])),
        (
            f"置信度低于 {summary['threshold']:.2f} Under threshold",
            _percent(summary["low_confidence_share"]),
        ),
    ]
    body = "".join(
        f"<tr><th scope='row'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in cells
    )
    return f"<table id='admin-summary' class='ludao-admin-table'><tbody>{body}</tbody></table>"
