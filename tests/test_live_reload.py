"""A running server (``python ui.py --watch``) picks up new and changed documents, no restart.

Real models, a real server process, a corpus folder made by the test.
"""

from __future__ import annotations

import time

import pytest
from conftest import real_server_env

from qa.web.servers import free_port, start_server

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FIRST = (
    "滨海市图书馆年度报告\n\n"
    "滨海市图书馆位于海湾路18号，每周一闭馆。"
    "馆内藏书约一百二十万册，设有少儿阅览室和古籍修复中心。\n"
)
SECOND = (
    "滨海市体育中心简介\n\n"
    "滨海市体育中心的游泳馆于2023年9月对外开放，馆内有一个五十米标准泳池。"
    "体育中心的停车场共有八百个车位。\n"
)


@pytest.fixture
def server(tmp_path):
    env = real_server_env(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "library.txt").write_text(FIRST, encoding="utf-8")
    env |= {"LUDAO_CORPUS": str(corpus), "LUDAO_WATCH": "0.5"}
    port = free_port()
    proc = start_server(port, env)
    yield f"http://127.0.0.1:{port}", corpus
    proc.terminate()
    proc.wait(timeout=30)


def _wait_for_generation(base: str, generation: int, timeout: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = httpx.get(f"{base}/healthz", timeout=10).json()
        if info.get("generation", 0) >= generation:
            return info
        time.sleep(0.5)
    raise AssertionError(f"the server did not reload within {timeout} s")


def test_new_and_removed_documents_are_picked_up(server) -> None:
    import httpx

    base, corpus = server
    question = {"question": "游泳馆是什么时候开放的？"}
    before = httpx.post(f"{base}/api/ask", json=question, timeout=60).json()
    assert all("体育中心" not in p["text"] for p in before["passages"])

    (corpus / "sports.txt").write_text(SECOND, encoding="utf-8")
    info = _wait_for_generation(base, 2)
    assert info["documents"] == 2
    after = httpx.post(f"{base}/api/ask", json=question, timeout=60).json()
    assert after["passages"][0]["doc"] == "sports"
    assert not after["no_answer"] and "2023年" in after["answers"][0]["text"]

    (corpus / "sports.txt").unlink()
    info = _wait_for_generation(base, 3)
    assert info["documents"] == 1
    gone = httpx.post(f"{base}/api/ask", json=question, timeout=60).json()
    assert all(p["doc"] != "sports" for p in gone["passages"])
