"""A Milvus server that goes away and comes back: 503 with the reason, then answers again.

The server is ``milvus-lite server`` started by the test on a free port with its data in the
test's temp dir, stopped by its PID, and started again on the same port and data.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.corpus import read_corpus
from tests.conftest import FakeEncoder
from tests.test_indexing import DOCUMENTS

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite", "fastapi")),
    reason="pymilvus/milvus-lite not installed: pip install 'ludao[milvus]'",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_milvus(data: Path, port: int) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("milvus-lite")
    proc = subprocess.Popen(
        [str(cli), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            assert proc.poll() is None, "milvus-lite server exited"
            time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    raise RuntimeError("milvus-lite server did not start")


def stop(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_store_down_gives_503_and_recovers_without_restart(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from qa.stores.milvus_store import MilvusStore
    from qa.web.store_health import add_store_checks

    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, paras in DOCUMENTS.items():
        (folder / name).write_text("\n\n".join(paras), encoding="utf-8")
    corpus = read_corpus([folder], max_chars=60, min_chars=10)
    port, data = free_port(), tmp_path / "milvus"
    proc = start_milvus(data, port)
    try:
        store = MilvusStore(f"http://127.0.0.1:{port}", "outage")
        searcher = store.sync(corpus, FakeEncoder(), roots=[folder]).searcher

        class Served:  # what the app serves: a pipeline whose retriever is the searcher
            retriever = searcher

        app = FastAPI()

        @app.get("/healthz")
        def healthz() -> dict:
            return {"status": "ok"}

        @app.get("/ask")
        def ask(q: str) -> list[str]:
            return [h.passage.id for h in searcher.search(q, top_k=3)]

        add_store_checks(app, Served())
        client = TestClient(app, raise_server_exceptions=False)
        before = client.get("/ask", params={"q": "年休假几天"}).json()
        assert before and client.get("/healthz").status_code == 200

        stop(proc)
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert f"127.0.0.1:{port}" in health.json()["reason"]
        answer = client.get("/ask", params={"q": "年休假几天"})
        assert answer.status_code == 503 and "unavailable" in answer.json()["detail"]
        assert "Traceback" not in answer.text

        proc = start_milvus(data, port)
        deadline = time.monotonic() + 60
        while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get("/healthz").status_code == 200
        again = client.get("/ask", params={"q": "年休假几天"})
        assert again.json() == before, again.text
    finally:
        if proc.poll() is None:
            stop(proc)
