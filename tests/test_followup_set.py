"""The hand-written follow-up set (qa/eval/data/followups.jsonl) is well formed and grounded in
the default corpus; its stand-alone questions are never rewritten; and, with the real models,
the conversation of the issue is answered through ``ludao ask --after`` and ``ludao eval``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qa.conversation import FollowUpResolver

ROOT = Path(__file__).resolve().parents[1]
FOLLOWUPS = ROOT / "qa" / "eval" / "data" / "followups.jsonl"
ARTICLE = ROOT / "data" / "corpus" / "000_9f14f984024ffdfa.txt"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in FOLLOWUPS.read_text(encoding="utf-8").splitlines()]


def test_the_set_has_the_shape_and_sizes_the_issue_asks_for(records):
    article = re.sub(r"\s+", "", ARTICLE.read_text(encoding="utf-8"))
    for record in records:
        assert set(record) == {"id", "kind", "history", "question", "complete", "answers"}
        assert record["history"] and all(isinstance(q, str) for q in record["history"])
        for answer in record["answers"]:
            assert re.sub(r"\s+", "", answer) in article, (record["id"], answer)
    kinds = [r["kind"] for r in records]
    assert len(records) == len({r["id"] for r in records})
    assert sum(k != "standalone" for k in kinds) >= 60
    assert kinds.count("standalone") >= 20
    assert kinds.count("unanswerable") >= 4
    assert {"slot-year", "yoy", "pronoun", "topic"} <= set(kinds)


def test_stand_alone_questions_are_not_rewritten(records):
    resolver = FollowUpResolver(ARTICLE.read_text(encoding="utf-8"))
    for record in records:
        if record["kind"] == "standalone":
            resolution = resolver.resolve(record["question"], record["history"])
            assert resolution.interpreted_as is None, record


@pytest.fixture
def real_home(ludao_home: Path) -> Path:
    from conftest import REAL_LUDAO_HOME

    from qa.config import DEFAULT_READER

    if not (DEFAULT_READER / "reader.json").is_file():
        pytest.skip("no shipped reader (models/reader-zh/reader.json)")
    ludao_home.mkdir(parents=True, exist_ok=True)
    (REAL_LUDAO_HOME / "models").mkdir(parents=True, exist_ok=True)
    (ludao_home / "models").symlink_to(REAL_LUDAO_HOME / "models")  # convert e5 only once
    return ludao_home


@pytest.mark.slow
@pytest.mark.integration
def test_the_issue_conversation_with_the_real_models(real_home, tmp_path):
    from click.testing import CliRunner

    from qa.cli import cli

    runner = CliRunner()
    first = "2024年厦门全社会研发投入强度是多少？"
    result = runner.invoke(cli, ["-q", "ask", "那2020年呢？", "--after", first, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["interpreted_as"] == "2020年厦门全社会研发投入强度是多少？"
    assert not data["no_answer"] and data["answers"][0]["text"].startswith("3.08%")
    complete = runner.invoke(cli, ["-q", "ask", data["interpreted_as"], "--json"])
    direct = json.loads(complete.output.strip().splitlines()[-1])
    assert data["answers"] == direct["answers"]  # answered exactly as the complete question

    lines = tmp_path / "followups.jsonl"
    rows = [
        {"id": "a", "question": "那2020年呢？", "history": [first], "answers": ["3.08%"]},
        {"id": "b", "question": first, "answers": ["3.46%"]},
    ]
    lines.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    result = runner.invoke(cli, ["-q", "eval", str(lines), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["n"] == 2 and report["followups"] == 1 and report["rewritten"] == 100.0
