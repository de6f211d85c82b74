"""Ratings of answers: one record shape and the append-only file the records go to.

A like or dislike is worth keeping only if it can later become a test case, so every record
says what was asked, what was answered from which passages, and which reader, embedding model,
corpus and Ludao version produced it. The chat's buttons (``source="chat"``) and
``POST /api/feedback`` (``source="api"``, from scripts or other front ends) write the same
shape; the chat knows the whole response, an API caller only what it sends, and the fields it
cannot know stay empty.

Records are JSON lines in ``$LUDAO_HOME/feedback.jsonl``. Lines written before the two shapes
became one still read back (:meth:`FeedbackRecord.from_dict`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .schema import PipelineInfo, Response

__all__ = ["FeedbackRecord", "FeedbackStore", "app_version"]


def app_version() -> str:
    """The installed Ludao version, or ``"unknown"`` when run from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ludao")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class FeedbackRecord:
    """One rating. ``answers`` and ``passages`` are the ``ludao ask --json`` objects of the
    rated response (chat only); ``passage_ids`` name the cited passages (both sources)."""

    time: str = field(default_factory=_now)
    source: str = "chat"
    """``"chat"`` (the like/dislike buttons) or ``"api"`` (``POST /api/feedback``)."""
    rating: str
    """``"like"``, ``"dislike"``, or what the chat's event carried (``"cleared"``...)."""
    question: str
    answer: str | None = None
    score: float | None = None
    no_answer: bool | None = None
    """``None`` when unknown (an API caller does not say)."""
    answers: tuple[dict[str, Any], ...] = ()
    passages: tuple[dict[str, Any], ...] = ()
    passage_ids: tuple[str, ...] = ()
    comment: str | None = None
    message_index: int | None = None
    """Position of the rated reply in the chat."""
    user: str = "anonymous"
    """Who rated (``qa.access.User.name``); ``"anonymous"`` without a login."""
    reader: str | None = None
    embedding_model: str | None = None
    corpus: tuple[str, ...] | None = None
    ludao_version: str = field(default_factory=app_version)

    @classmethod
    def from_response(
        cls,
        response: Response,
        rating: str,
        *,
        info: PipelineInfo,
        message_index: int | None = None,
    ) -> FeedbackRecord:
        """What a like/dislike in the chat stores: the whole rated response."""
        data = response.to_dict()
        best = data["answers"][0] if data["answers"] and not response.no_answer else None
        return cls(
            source="chat",
            rating=rating,
            question=response.question,
            answer=best["text"] if best else None,
            score=best["score"] if best else None,
            no_answer=response.no_answer,
            answers=tuple(data["answers"]),
            passages=tuple(data["passages"]),
            passage_ids=tuple(p["id"] for p in data["passages"]),
            message_index=message_index,
            reader=response.reader,
            embedding_model=info.embedding_model,
            corpus=info.corpus,
        )

    @classmethod
    def from_api(
        cls,
        question: str,
        rating: str,
        *,
        info: PipelineInfo,
        answer: str | None = None,
        passage_ids: Sequence[str] = (),
        comment: str | None = None,
    ) -> FeedbackRecord:
        """What ``POST /api/feedback`` stores: what the caller says, plus what is serving."""
        return cls(
            source="api",
            rating=rating,
            question=question,
            answer=answer,
            passage_ids=tuple(passage_ids),
            comment=comment,
            reader=info.reader,
            embedding_model=info.embedding_model,
            corpus=info.corpus,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackRecord:
        """A record read back from a JSON line, including lines of the older shapes.

        Old chat lines have no ``source`` and no ``passage_ids`` (those come from their
        ``passages``); old API lines lack the response fields. Keys this version does not know
        (from a newer one) are left out rather than refused.
        """
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("source", "chat")
        if "passage_ids" not in values:
            values["passage_ids"] = [p["id"] for p in values.get("passages", ()) if "id" in p]
        for name in ("answers", "passages", "passage_ids", "corpus"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeedbackStore:
    """Append-only JSONL file; a per-path lock plus ``flock`` keeps concurrent appends whole."""

    _locks: ClassVar[dict[Path, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        with self._locks_guard:
            self._lock = self._locks.setdefault(self.path, threading.Lock())

    def append(self, record: FeedbackRecord) -> None:
        text = json.dumps(record.to_dict(), ensure_ascii=False, default=str)
        line = (text + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _flock(fd)
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            finally:
                os.close(fd)  # closing releases the flock

    def read(self) -> list[FeedbackRecord]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [FeedbackRecord.from_dict(json.loads(line)) for line in fh if line.strip()]


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the thread lock still holds in-process
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
