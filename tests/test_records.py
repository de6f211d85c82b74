"""Feedback records through SQLAlchemy (qa.records): SQLite by default, a real PostgreSQL too."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa.config import Settings
from qa.feedback import FeedbackRecord, FeedbackStore
from qa.records import SqlFeedbackStore, database_url, open_feedback
from tests.pg_server import missing_reason, postgres_server


def record(i: int, **extra: object) -> FeedbackRecord:
    return FeedbackRecord(source="api", rating="like", question=f"问题 {i}", **extra)  # type: ignore[arg-type]


def test_default_is_a_sqlite_file_under_the_home(ludao_home: Path) -> None:
    url = database_url(Settings.load())
    assert url == f"sqlite:///{ludao_home / 'records.sqlite'}"
    assert isinstance(open_feedback(url), SqlFeedbackStore)
    assert isinstance(open_feedback(ludao_home / "feedback.jsonl"), FeedbackStore)


def test_round_trip_and_export(tmp_path: Path) -> None:
    store = SqlFeedbackStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    first = record(1, comment="好")
    store.append(first)
    store.append(record(2))
    assert store.read()[0] == first and store.count() == 2
    out = tmp_path / "export.jsonl"
    assert store.export_jsonl(out) == 2
    assert FeedbackStore(out).read() == store.read()


def test_existing_jsonl_is_imported_once_without_losing_a_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "feedback.jsonl"
    old = FeedbackStore(jsonl)
    for i in range(3):
        old.append(record(i))
    with jsonl.open("a", encoding="utf-8") as fh:
        fh.write('{"rating": "like", "question": "旧格式"}\n')  # an old line: no source
        fh.write("not json at all\n")
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    store = SqlFeedbackStore(url)
    rows = store.read()
    assert len(rows) == 5
    assert [r.question for r in rows[:4]] == ["问题 0", "问题 1", "问题 2", "旧格式"]
    assert rows[4].rating == "unreadable" and "not json" in rows[4].question
    assert not jsonl.exists() and (tmp_path / "feedback.jsonl.imported").exists()
    assert SqlFeedbackStore(url).count() == 5  # a second start imports nothing again


def test_concurrent_appends_from_threads_all_arrive(tmp_path: Path) -> None:
    store = SqlFeedbackStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.append(record(i)), range(200)))
    assert store.count() == 200
    assert sorted(r.question for r in store.read()) == sorted(f"问题 {i}" for i in range(200))


WRITER = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from qa.feedback import FeedbackRecord
    from qa.records import SqlFeedbackStore
    store = SqlFeedbackStore(sys.argv[1])
    name = sys.argv[2]
    def send(i):
        store.append(FeedbackRecord(source="api", rating="like", question=f"{name} {i}"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(60)))
    """
)


def two_writers(url: str) -> None:
    """Two processes (two servers' worth of pools), 8 threads each, 60 records each."""
    root = Path(__file__).resolve().parent.parent
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, name], cwd=root) for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]


def test_two_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    two_writers(url)
    assert SqlFeedbackStore(url).count() == 120


@pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")
def test_postgresql_started_by_the_test() -> None:
    with postgres_server() as url:
        two_writers(url)
        store = SqlFeedbackStore(url)
        assert store.count() == 120
        questions = {r.question for r in store.read()}
        assert questions == {f"{n} {i}" for n in "ab" for i in range(60)}
        comment = json.dumps({"嵌套": True}, ensure_ascii=False)
        store.append(record(7, comment=comment))
        assert store.read()[-1].comment == comment == '{"嵌套": true}'
