"""Feedback (and later audit and usage) records in a database, through SQLAlchemy.

One code path for both deployments: a SQLite file under ``$LUDAO_HOME`` by default (no server,
safe for the threads and processes of one machine: WAL journal, a busy timeout), and
``LUDAO_DATABASE_URL=postgresql+psycopg://…`` (``ludao[postgres]``) when several servers share the
records. A record is stored whole as JSON beside the columns one filters on (time, source,
rating, user), so a field added to :class:`~qa.feedback.FeedbackRecord` needs no migration.

An existing ``feedback.jsonl`` is imported on first use, in one transaction, then renamed to
``feedback.jsonl.imported``: a crash before the commit imports it again next time, never
half. ``export_jsonl`` writes the records back out as the JSON lines they always were.

SQLAlchemy is a default dependency (one pure-Python wheel needing only ``typing-extensions``,
already installed): the SQLite default must work out of the box, and a second, stdlib-only
implementation for SQLite would be a second thing to keep correct.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LudaoError
from .feedback import FeedbackRecord, FeedbackStore

try:  # POSIX advisory locks; elsewhere first connections are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .config import Settings

logger = logging.getLogger(__name__)

__all__ = ["SqlFeedbackStore", "database_url", "open_feedback", "record_engine"]

IMPORTED_SUFFIX = ".imported"


def database_url(settings: Settings) -> str:
    """``settings.database_url``, or the SQLite file ``$LUDAO_HOME/records.sqlite``."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{settings.home_dir / 'records.sqlite'}"


def open_feedback(target: str | os.PathLike[str]) -> FeedbackStore | SqlFeedbackStore:
    """A database URL (``scheme://``) → :class:`SqlFeedbackStore`; a file path → JSON lines."""
    if isinstance(target, str) and "://" in target:
        return SqlFeedbackStore(target)
    return FeedbackStore(target)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> Engine:
    """One engine (one connection pool) per URL and process, with the tables created."""
    with _engines_lock:
        if url in _engines:
            return _engines[url]
        try:
            from sqlalchemy import create_engine, event
        except ImportError as exc:  # pragma: no cover - a default dependency
            raise LudaoError("feedback records need SQLAlchemy: pip install sqlalchemy") from exc
        sqlite = url.startswith("sqlite")
        if sqlite and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
        try:
            engine = create_engine(
                url,
                connect_args={"timeout": 30} if sqlite else {},
                pool_pre_ping=not sqlite,
            )
        except ImportError as exc:
            raise LudaoError(
                f"no database driver for {url.split('://')[0]}: pip install 'ludao[postgres]'"
            ) from exc
        if sqlite:

            @event.listens_for(engine, "connect")
            def _wal(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        from ._record_tables import METADATA

        with _first_use_lock(url if sqlite else None):
            try:
                METADATA.create_all(engine)
            except Exception:  # another machine created the tables at the same moment
                logger.debug("creating the record tables raced another process; checking again")
                METADATA.create_all(engine)
        _engines[url] = engine
        return engine


@contextlib.contextmanager
def _first_use_lock(sqlite_url: str | None) -> Iterator[None]:
    """Serialise the first connection of processes sharing one SQLite file.

    Switching a new file to WAL needs the database to itself, and SQLite answers "database is
    locked" at once, without waiting, when a second process opens the file at that moment; two
    servers started together hit it. A lock file beside the database makes them take turns.
    """
    if sqlite_url is None or fcntl is None or not sqlite_url.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(sqlite_url.removeprefix("sqlite:///")).expanduser()
    with lock_path.with_name(lock_path.name + ".lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def record_engine(url: str) -> Engine:
    """The process's engine for ``url`` with every record table created (usage, audit too)."""
    return _engine(url)


class SqlFeedbackStore:
    """Ratings in the ``feedback`` table: ``append``/``read`` as the JSONL store, plus export.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://…``).
        migrate_from: a ``feedback.jsonl`` to import on first use (default: ``feedback.jsonl``
            beside a SQLite file); ``migrate=False`` only opens (to count, to export).
    """

    def __init__(
        self,
        url: str,
        *,
        migrate_from: str | os.PathLike[str] | None = None,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.engine = _engine(url)
        if not migrate:
            return
        if migrate_from is None and url.startswith("sqlite:///"):
            migrate_from = Path(url.removeprefix("sqlite:///")).parent / "feedback.jsonl"
        if migrate_from is not None and Path(migrate_from).is_file():
            self.import_jsonl(Path(migrate_from))

    def __repr__(self) -> str:
        return f"SqlFeedbackStore({self.engine.url.render_as_string(hide_password=True)})"

    def append(self, record: FeedbackRecord) -> None:
        from ._record_tables import FEEDBACK

        with self.engine.begin() as connection:
            connection.execute(FEEDBACK.insert(), [_row(record)])

    def read(self) -> list[FeedbackRecord]:
        """Every record, oldest first (insertion order)."""
        from sqlalchemy import select

        from ._record_tables import FEEDBACK

        with self.engine.connect() as connection:
            rows = connection.execute(select(FEEDBACK.c.record).order_by(FEEDBACK.c.id))
            return [FeedbackRecord.from_dict(json.loads(r.record)) for r in rows]

    def count(self) -> int:
        from sqlalchemy import func, select

        from ._record_tables import FEEDBACK

        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(FEEDBACK)).scalar_one())

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every record as one JSON line (the old file's shape); returns the count."""
        records = self.read()
        with Path(path).open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_dict(), ensure_ascii=False, default=str) + "\n")
        return len(records)

    def import_jsonl(self, path: Path) -> int:
        """Import a JSONL feedback file in one transaction, then rename it ``*.imported``.

        A line that does not parse is kept verbatim (``rating="unreadable"``, the text as the
        question) rather than dropped, so no line is ever lost.
        """
        from ._record_tables import FEEDBACK

        rows = []
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = FeedbackRecord.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, AttributeError, KeyError):
                    logger.warning(
                        "%s line %d is not a feedback record; kept as text", path, number
                    )
                    record = FeedbackRecord(source="import", rating="unreadable", question=line)
                rows.append(_row(record))
        with self.engine.begin() as connection:
            if rows:
                connection.execute(FEEDBACK.insert(), rows)
        os.replace(path, path.with_name(path.name + IMPORTED_SUFFIX))
        logger.info("imported %d feedback records from %s into %s", len(rows), path, self)
        return len(rows)


def _row(record: FeedbackRecord) -> dict[str, Any]:
    data = record.to_dict()
    return {
        "time": str(data.get("time") or ""),
        "source": str(data.get("source") or ""),
        "rating": str(data.get("rating") or ""),
        "user": data.get("user"),
        "question": str(data.get("question") or "")[:2000],
        "record": json.dumps(data, ensure_ascii=False, default=str),
    }
