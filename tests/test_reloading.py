"""qa.reloading and the reload/feedback endpoints: swaps are whole, failures keep serving."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from test_ui import FakePipeline

from qa.errors import LudaoError
from qa.reloading import ReloadablePipeline, corpus_signature
from qa.schema import PipelineInfo

pytest.importorskip("fastapi")

import ui


class Numbered(FakePipeline):
    """A fake pipeline that says which build it is, in its info and in each answer's reader."""

    def __init__(self, number: int, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.number = number

    def info(self) -> PipelineInfo:
        return replace(super().info(), passages=self.number)

    def ask(self, question, top_k=None):
        response = super().ask(question, top_k)
        return type(response)(
            response.question,
            response.answers,
            response.hits,
            response.no_answer,
            f"build-{self.number}",
            response.timings_ms,
        )


class Factory:
    def __init__(self, build_seconds: float = 0.0) -> None:
        self.count = 0
        self.fail_with: Exception | None = None
        self.build_seconds = build_seconds

    def __call__(self) -> Numbered:
        if self.fail_with is not None:
            raise self.fail_with
        time.sleep(self.build_seconds)
        self.count += 1
        return Numbered(self.count)


def test_signature_changes_with_files_and_ignores_hidden(tmp_path):
    (tmp_path / "a.txt").write_text("一", encoding="utf-8")
    first = corpus_signature([tmp_path])
    (tmp_path / ".hidden").write_text("x", encoding="utf-8")
    assert corpus_signature([tmp_path]) == first
    (tmp_path / "b.txt").write_text("二", encoding="utf-8")
    second = corpus_signature([tmp_path])
    assert second != first and len(second) == 2
    (tmp_path / "a.txt").write_text("一二三", encoding="utf-8")
    assert corpus_signature([tmp_path]) != second
    assert corpus_signature([tmp_path / "missing"]) == ()


def test_reload_swaps_and_counts_generations(tmp_path):
    factory = Factory()
    live = ReloadablePipeline(factory, corpus=[tmp_path])
    assert live.ask("问题？").reader == "build-1"
    result = live.reload()
    assert result.reloaded and result.error is None
    assert live.ask("问题？").reader == "build-2"
    assert live.info().generation == 2 and result.to_dict()["passages"] == 2


@pytest.mark.parametrize("error", [LudaoError("no readable documents"), RuntimeError("boom")])
def test_failed_reload_keeps_serving_the_old_pipeline(tmp_path, error):
    factory = Factory()
    live = ReloadablePipeline(factory, corpus=[tmp_path])
    factory.fail_with = error
    result = live.reload()
    assert not result.reloaded and result.error
    assert "boom" not in result.error  # internal errors are logged, not shown
    assert live.ask("问题？").reader == "build-1" and live.generation == 1


def test_questions_during_a_slow_reload_get_whole_answers(tmp_path):
    """While the new pipeline is built, the old one answers; afterwards only the new one."""
    factory = Factory()
    live = ReloadablePipeline(factory, corpus=[tmp_path])
    factory.build_seconds = 0.5
    reloader = threading.Thread(target=live.reload)
    reloader.start()
    with ThreadPoolExecutor(4) as pool:
        during = list(pool.map(lambda _: live.ask("问题？").reader, range(20)))
    reloader.join()
    assert set(during) <= {"build-1", "build-2"}
    assert "build-1" in during  # served while building
    assert live.ask("问题？").reader == "build-2"


def test_watcher_reloads_when_a_file_changes(tmp_path):
    (tmp_path / "a.txt").write_text("一", encoding="utf-8")
    factory = Factory()
    live = ReloadablePipeline(factory, corpus=[tmp_path])
    assert not live.changed()
    live.start_watching(0.05)
    try:
        (tmp_path / "b.txt").write_text("二", encoding="utf-8")
        deadline = time.monotonic() + 10
        while live.generation < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.generation == 2 and not live.changed()
        time.sleep(0.3)
        assert live.generation == 2  # no change, no reload
    finally:
        live.stop_watching()


def test_watch_interval_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        ReloadablePipeline(Factory(), corpus=[tmp_path]).start_watching(0)


# --- HTTP ----------------------------------------------------------------------------------


def _client(app, host: str = "testclient"):
    from fastapi.testclient import TestClient

    return TestClient(app, client=(host, 50000))


def test_reload_endpoint_needs_the_token_even_from_loopback(tmp_path):
    live = ReloadablePipeline(Factory(), corpus=[tmp_path])
    app = ui.create_app(live, feedback_path=tmp_path / "f.jsonl", admin_token="t0ken")
    with _client(app, "127.0.0.1") as c:
        assert c.post("/api/reload").status_code == 401  # "local" is not admin (issue #13)
        r = c.post("/api/reload", headers={"authorization": "Bearer t0ken"})
        assert r.status_code == 200 and r.json()["reloaded"] and r.json()["generation"] == 2
        assert c.get("/healthz").json()["generation"] == 2


def test_reload_endpoint_with_token(tmp_path):
    live = ReloadablePipeline(Factory(), corpus=[tmp_path])
    app = ui.create_app(live, feedback_path=tmp_path / "f.jsonl", admin_token="t0ken")
    with _client(app, "10.1.2.3") as c:
        assert c.post("/api/reload").status_code == 401
        bad = c.post("/api/reload", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = c.post("/api/reload", headers={"authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and ok.json()["reloaded"]


def test_failed_reload_is_a_500_with_a_message(tmp_path):
    factory = Factory()
    live = ReloadablePipeline(factory, corpus=[tmp_path])
    app = ui.create_app(live, feedback_path=tmp_path / "f.jsonl", admin_token="t0ken")
    factory.fail_with = LudaoError("no readable documents found in /x")
    with _client(app, "127.0.0.1") as c:
        r = c.post("/api/reload", headers={"authorization": "Bearer t0ken"})
        assert r.status_code == 500 and "no readable documents" in r.json()["error"]
        assert c.post("/api/ask", json={"question": "问题？"}).json()["reader"] == "build-1"


def test_plain_pipeline_has_no_reload_endpoint(tmp_path):
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "f.jsonl")
    with _client(app, "127.0.0.1") as c:
        assert c.post("/api/reload").status_code in (404, 405)


def test_feedback_endpoint_stores_records_with_versions(tmp_path):
    path = tmp_path / "f.jsonl"
    app = ui.create_app(FakePipeline(), feedback_path=path)
    with _client(app) as c:
        r = c.post(
            "/api/feedback",
            json={"question": "研发投入强度？", "rating": "like", "answer": "3.46%",
                  "passage_ids": ["d1:0:aaaa"]},
        )  # fmt: skip
        assert r.status_code == 201
        for bad in (
            {"question": "q", "rating": "meh"},
            {"question": "", "rating": "like"},
            {"question": "q", "rating": "like", "extra": 1},
            {"question": "q" * 3000, "rating": "like"},
        ):
            assert c.post("/api/feedback", json=bad).status_code == 422
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1
    assert records[0]["answer"] == "3.46%" and records[0]["source"] == "api"
    assert records[0]["embedding_model"] == "multilingual-e5-small" and records[0]["reader"]


def test_a_reload_builds_on_a_thread_that_then_ends(tmp_path):
    """A build runs torch; the thread that built must not live on with its OpenMP team (the
    watcher's would), so each build gets a thread of its own."""
    built_on: list[threading.Thread] = []

    def factory():
        built_on.append(threading.current_thread())
        return Numbered(len(built_on))

    live = ReloadablePipeline(factory, corpus=[tmp_path])
    assert live.reload().reloaded and live.reload().reloaded
    first, *reloads = built_on
    assert first is threading.current_thread()  # the first build is the caller's (start-up)
    assert len(reloads) == 2 and all(t is not threading.current_thread() for t in reloads)
    assert not any(t.is_alive() for t in reloads)
    assert live.ask("问题？").reader == "build-3"
