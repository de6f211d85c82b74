"""The curl and gradio_client examples of docs/embedding.md, run as written against a real server.

The server is ``python ui.py`` in its own process on the default corpus with the default models;
only the port in the documented commands is changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import real_server_env

from qa.web.servers import count_feedback, free_port, start_server

DOC = Path(__file__).resolve().parent.parent / "docs" / "embedding.md"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def server_env(tmp_path_factory) -> dict[str, str]:
    return real_server_env(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def server_url(server_env: dict[str, str]) -> str:
    port = free_port()
    proc = start_server(port, server_env)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server_home(server_env: dict[str, str]) -> Path:
    return Path(server_env["LUDAO_HOME"])


def test_documented_curl_calls_answer(server_url: str) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    block = next(b for b in _code_blocks("bash") if "/api/ask" in b and "curl" in b)
    script = block.replace("http://127.0.0.1:7860", server_url)
    commands = [c for c in script.replace("\\\n", " ").splitlines() if c.strip()]
    ask = subprocess.run(commands[0], shell=True, capture_output=True, text=True, timeout=120)
    answer = json.loads(ask.stdout)
    assert set(answer) >= {"question", "answers", "no_answer", "passages", "reader", "timings_ms"}
    assert not answer["no_answer"]
    assert "3.46%" in answer["answers"][0]["text"]
    health = subprocess.run(commands[1], shell=True, capture_output=True, text=True, timeout=60)
    assert json.loads(health.stdout)["passages"] > 0


def test_documented_gradio_client_snippet_runs(server_url: str) -> None:
    block = next(b for b in _code_blocks("python") if "gradio_client" in b)
    code = block.replace("http://127.0.0.1:7860/", server_url + "/")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True
    ).stdout.strip()
    assert out and out != "文档中没有找到答案"


def test_bounded_load_with_concurrent_feedback(server_url: str, server_home: Path) -> None:
    """A small version of ``python -m benchmarks.api_load --concurrency 8 --feedback-every 4``."""
    from qa.eval.question_files import SEED_QUESTIONS, load_examples
    from qa.web.load import run_level

    feedback = server_home / "feedback.jsonl"
    before = count_feedback(feedback)
    questions = [ex.question for ex in load_examples(SEED_QUESTIONS)]
    level = run_level(server_url, questions, 8, 48, feedback_every=2)
    assert level["errors"] == 0, level["error_kinds"]
    assert level["feedback_sent"] == 24
    assert count_feedback(feedback) - before == 24
