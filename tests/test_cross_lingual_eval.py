"""English questions over Chinese paragraphs: the parallel-file rewording and its metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.eval.metrics import score_answer, scoring_language
from qa.eval.question_files import load_examples, reworded


def squad_file(path: Path, question: str, context: str, answer: str, qid: str = "q1") -> Path:
    qa = {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": 0}]}
    data = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_questions_are_taken_from_the_parallel_file_by_id(tmp_path: Path) -> None:
    zh = squad_file(tmp_path / "zh.json", "首都是哪里？", "北京是中国的首都。", "北京")
    en = squad_file(tmp_path / "en.json", "What is the capital?", "Beijing is the capital.", "x")
    (example,) = reworded(load_examples(zh), load_examples(en))
    assert example.question == "What is the capital?"
    assert example.context == "北京是中国的首都。" and example.answers == ("北京",)


def test_a_question_without_counterpart_is_an_error(tmp_path: Path) -> None:
    zh = squad_file(tmp_path / "zh.json", "首都是哪里？", "北京是中国的首都。", "北京")
    en = squad_file(tmp_path / "en.json", "What?", "Beijing.", "x", qid="other")
    with pytest.raises(ValueError, match="no counterpart"):
        reworded(load_examples(zh), load_examples(en))
    result = CliRunner().invoke(
        cli,
        ["eval", str(zh), "--gold-passage", "--reader", "sentence", "--questions-from", str(en)],
    )
    assert result.exit_code != 0 and "no counterpart" in result.output


@pytest.mark.parametrize(
    ("question", "golds", "language"),
    [
        ("What is the capital?", ["北京"], "zh"),  # English question, Chinese answer
        ("What is the capital?", ["Beijing"], "en"),
        ("首都是哪一年定的？", ["1949"], "zh"),  # CMRC scores Latin answers of Chinese questions
    ],
)
def test_the_metric_follows_the_text_the_answer_is_cut_from(
    question: str, golds: list[str], language: str
) -> None:
    assert scoring_language(question, golds) == language


def test_chinese_answers_to_english_questions_get_character_f1() -> None:
    # With the English metric "北京市" vs "北京" would share no whitespace token: F1 0.
    score = score_answer("北京市", ["北京"], question="What is the capital?")
    assert score.exact_match == 0 and score.f1 == pytest.approx(0.8)
