"""Usage records: every answered question, who asked it and how it went, in the records database.

The owners of a knowledge base need to see what staff ask and where answers fail; IT needs to
see who asked what. One row per answered question (the chat, the widget and ``/api/ask`` all
answer through ``qa.web.intranet.ask_as``): time, user and groups, the question and what it was
read as, whether the reader declined, the best answer's score, the passages cited and the
latency. They go to the ``usage`` table beside the feedback (``qa.records``: SQLite under
``$LUDAO_HOME`` by default, ``LUDAO_DATABASE_URL`` for PostgreSQL).

A failure to store a record is logged and never fails the answer: a full disk must not take
the chat down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .records import record_engine

if TYPE_CHECKING:
    from .access import User
    from .schema import Response

logger = logging.getLogger(__name__)

__all__ = ["UsageLog", "UsageRecord"]

MAX_QUESTION_CHARS = 2000


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One answered question."""

    time: str = field(default_factory=_now)
    user: str = "anonymous"
    groups: tuple[str, ...] = ()
    question: str
    interpreted_as: str | None = None
    no_answer: bool
    top_score: float | None = None
    """The best answer's score; ``None`` when the reader declined."""
    passage_ids: tuple[str, ...] = ()
    latency_ms: float = 0.0

    @classmethod
    def from_response(cls, response: Response, user: User, latency_ms: float) -> UsageRecord:
        best = response.answers[0] if response.answers and not response.no_answer else None
        return cls(
            user=user.name,
            groups=tuple(sorted(user.groups)),
            question=response.question[:MAX_QUESTION_CHARS],
            interpreted_as=(response.interpreted_as or None),
            no_answer=bool(response.no_answer),
            top_score=float(best.score) if best is not None else None,
            passage_ids=tuple(h.passage.id for h in response.hits),
            latency_ms=round(float(latency_ms), 2),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UsageLog:
    """The ``usage`` table: :meth:`append` one record, :meth:`read` them back, oldest first."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = record_engine(url)

    def __repr__(self) -> str:
        return f"UsageLog({self.engine.url.render_as_string(hide_password=True)})"

    def append(self, record: UsageRecord) -> bool:
        """Store ``record``; ``False`` (and a log line) when the database refused it."""
        from ._record_tables import USAGE

        row = {
            "time": record.time,
            "user": record.user[:200],
            "groups": ",".join(record.groups)[:1000],
            "question": record.question[:MAX_QUESTION_CHARS],
            "interpreted_as": (record.interpreted_as or None)
            and record.interpreted_as[:MAX_QUESTION_CHARS],
            "no_answer": int(record.no_answer),
            "top_score": record.top_score,
            "passage_ids": json.dumps(list(record.passage_ids), ensure_ascii=False),
            "latency_ms": record.latency_ms,
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(USAGE.insert(), [row])
        except Exception:  # the answer was given; a lost record must not turn it into an error
            logger.exception("could not store a usage record in %r", self)
            return False
        return True

    def read(self, *, since: str | None = None, limit: int = 200_000) -> list[UsageRecord]:
        """Records from ``since`` (ISO time) on, oldest first, at most ``limit`` (the newest)."""
        from sqlalchemy import select

        from ._record_tables import USAGE

        query = select(USAGE).order_by(USAGE.c.id.desc()).limit(limit)
        if since:
            query = query.where(USAGE.c.time >= since)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [_record(row) for row in reversed(rows)]

    def count(self) -> int:
        from sqlalchemy import func, select

        from ._record_tables import USAGE

        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(USAGE)).scalar_one())


def _record(row: Any) -> UsageRecord:
    try:
        passage_ids: Iterable[str] = json.loads(row.passage_ids)
    except ValueError:
        passage_ids = ()
    return UsageRecord(
        time=row.time,
        user=row.user,
        groups=tuple(g for g in row.groups.split(",") if g),
        question=row.question,
        interpreted_as=row.interpreted_as,
        no_answer=bool(row.no_answer),
        top_score=row.top_score,
        passage_ids=tuple(str(p) for p in passage_ids),
        latency_ms=float(row.latency_ms),
    )
