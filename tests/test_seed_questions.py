"""Checks on the hand-written development questions about the default corpus article."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "qa" / "eval" / "data" / "seed_questions.jsonl"
ARTICLE = ROOT / "data" / "corpus" / "000_9f14f984024ffdfa.txt"


def _without_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_records_have_the_jsonl_shape(records: list[dict]) -> None:
    for record in records:
        assert set(record) == {"id", "question", "answers"}, record
        assert re.fullmatch(r"q\d{3}", record["id"]), record
        assert isinstance(record["question"], str) and record["question"].strip(), record
        assert isinstance(record["answers"], list), record
        assert all(isinstance(a, str) and a.strip() for a in record["answers"]), record
        assert len(record["answers"]) <= 3, record


def test_enough_questions_and_unanswerable_ones(records: list[dict]) -> None:
    assert len(records) >= 48
    assert sum(1 for record in records if not record["answers"]) >= 8


def test_ids_and_questions_are_unique(records: list[dict]) -> None:
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids))
    questions = [record["question"] for record in records]
    assert len(questions) == len(set(questions))


def test_every_answer_occurs_in_the_article(records: list[dict]) -> None:
    article = _without_whitespace(ARTICLE.read_text(encoding="utf-8"))
    missing = [
        (record["id"], answer)
        for record in records
        for answer in record["answers"]
        if _without_whitespace(answer) not in article
    ]
    assert not missing
