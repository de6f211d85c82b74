"""The bounded API load test with login and groups on, against a real ``python ui.py``.

The default corpus with the default models; a users file (``li`` in group ``staff``, ``zhao``
in none, ``boss`` an admin) and an access rule that gives the corpus's file to ``staff`` only.
Under load as ``li``: no errors, every rating stored, every answer a usage record, the counts
in ``/metrics``; ``zhao`` is told the documents do not say. The disliked questions exported from
the server are then scored by ``ludao eval`` as a user of ``staff``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import real_server_env

from qa.web.servers import count_feedback, free_port, start_server

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USERS = """
[users.li]
password = "li-pass"
groups = ["staff"]

[users.zhao]
password = "zhao-pass"
groups = []

[users.boss]
password = "boss-pass"
groups = ["admin", "staff"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load-groups")
    env = real_server_env(tmp)
    users = tmp / "users.toml"
    users.write_text(USERS, encoding="utf-8")
    users.chmod(0o600)
    env |= {
        "LUDAO_USERS_FILE": str(users),
        "LUDAO_ACCESS_RULES": "*.txt=staff",
        "LUDAO_METRICS_TOKEN": "scrape-token",
    }
    port = free_port()
    proc = start_server(port, env)
    yield f"http://127.0.0.1:{port}", Path(env["LUDAO_HOME"]), env
    proc.terminate()
    proc.wait(timeout=30)


def test_bounded_load_with_login_and_groups(server) -> None:
    from qa.eval.question_files import SEED_QUESTIONS, load_examples
    from qa.usage import UsageLog
    from qa.web.load import run_level

    url, home, _ = server
    feedback = home / "feedback.jsonl"
    usage = UsageLog(f"sqlite:///{home / 'records.sqlite'}")
    before, asked_before = count_feedback(feedback), usage.count()
    questions = [ex.question for ex in load_examples(SEED_QUESTIONS)]
    assert httpx.post(f"{url}/api/ask", json={"question": questions[0]}).status_code == 401
    level = run_level(url, questions, 8, 48, feedback_every=2, auth=("li", "li-pass"))
    assert level["errors"] == 0, level["error_kinds"]
    assert level["feedback_sent"] == 24
    assert count_feedback(feedback) - before == 24
    assert usage.count() - asked_before == 48
    records = usage.read()[-48:]
    assert {r.user for r in records} == {"li"} and all("staff" in r.groups for r in records)
    # Someone outside the group asks the same: nothing of the restricted file is read.
    outsider = httpx.post(f"{url}/api/ask", json={"question": questions[0]},
                          auth=("zhao", "zhao-pass"), timeout=120).json()  # fmt: skip
    assert outsider["no_answer"] and outsider["passages"] == []
    metrics = httpx.get(f"{url}/metrics", headers={"authorization": "Bearer scrape-token"}).text
    assert "ludao_answers_total 49" in metrics
    assert 'ludao_stage_seconds_count{stage="total"} 49' in metrics
    print(json.dumps(level, ensure_ascii=False))


def test_exported_feedback_scores_with_ludao_eval(server, tmp_path) -> None:
    url, _, env = server
    r = httpx.get(f"{url}/api/admin/export", auth=("boss", "boss-pass"), timeout=60)
    assert r.status_code == 200
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines and all(
        x["answers"] == [] and x["reason"] in ("disliked", "declined") for x in lines
    )
    exported = tmp_path / "regression.jsonl"
    exported.write_text(r.text, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "qa", "eval", str(exported), "--json", "--as-groups", "staff"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["n"] == len(lines)
    assert 0.0 <= report["no_answer_accuracy"] <= 100.0  # a percentage
    print(json.dumps(report, ensure_ascii=False))
