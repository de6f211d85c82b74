"""The audit log of admin actions: upload, remove, restore, reindex, reload, export.

IT must know who changed what the server answers from, and when. Every admin action writes one
entry (who, what, on what, when, with which result) to two places:

- the ``audit`` table of the records database (``qa.records``), which the admin page reads and
  which several servers sharing one PostgreSQL database share;
- ``audit.jsonl`` (append-only, one JSON object a line, ``O_APPEND`` plus ``flock`` so lines of
  concurrent writers never interleave), which a log shipper or ``tail -f`` can follow without a
  database client and which survives the database being lost or reset.

Either write may fail (a full disk, a database outage) without the other, and without failing
the action itself: the action has already happened, and a line in the server log says which
record is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .records import record_engine

logger = logging.getLogger(__name__)

__all__ = ["AuditEntry", "AuditLog"]

Action = Literal["upload", "remove", "restore", "reindex", "reload", "export"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One admin action. ``result`` is ``"ok"`` or a short failure (``"refused"``, ``"failed"``)."""

    time: str = field(default_factory=_now)
    user: str
    action: Action
    target: str = ""
    result: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    """Writes :class:`AuditEntry` to the database at ``url`` and to the JSONL file ``path``."""

    _lock = threading.Lock()

    def __init__(self, url: str, path: str | os.PathLike[str]) -> None:
        self.url = url
        self.path = Path(path)
        self.engine = record_engine(url)

    def record(self, entry: AuditEntry) -> None:
        """Store ``entry`` in both places; a failing place is logged, the other still written."""
        from ._record_tables import AUDIT

        data = entry.to_dict()
        line = json.dumps(data, ensure_ascii=False, default=str)
        row = {
            "time": entry.time,
            "user": entry.user[:200],
            "action": entry.action,
            "target": entry.target[:1000],
            "result": entry.result[:40],
            "detail": json.dumps(entry.detail, ensure_ascii=False, default=str),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(AUDIT.insert(), [row])
        except Exception:
            logger.exception("audit entry not stored in the database: %s", line)
        try:
            self._append_line(line)
        except OSError:
            logger.exception("audit entry not written to %s: %s", self.path, line)
        logger.info("audit: %s", line)

    def action(
        self, user: str, action: Action, target: str = "", result: str = "ok", **detail: Any
    ) -> None:
        """Shorthand for ``record(AuditEntry(...))``."""
        self.record(
            AuditEntry(user=user, action=action, target=target, result=result, detail=detail)
        )

    def read(self, limit: int = 500) -> list[AuditEntry]:
        """The newest ``limit`` entries from the database, newest first."""
        from sqlalchemy import select

        from ._record_tables import AUDIT

        query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [
            AuditEntry(
                time=r.time,
                user=r.user,
                action=r.action,
                target=r.target,
                result=r.result,
                detail=json.loads(r.detail or "{}"),
            )
            for r in rows
        ]

    def _append_line(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                try:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_EX)
                except ImportError:  # pragma: no cover - Windows: the thread lock still holds
                    pass
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
